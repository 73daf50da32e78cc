"""ARC-Easy / ARC-Challenge (AI2 Reasoning Challenge, ARC-V1-Feb2018) as multiple-choice ``Problem`` records.

Local files: ``{root}/arc/ARC-{Easy,Challenge}-{Train,Dev,Test}.jsonl`` in the original format (``../shared/data``
by default, or ``$NEGRL_DATA``); the hub dataset ``allenai/ai2_arc`` is used only when ``source="hub"``. ``answerKey``
is sometimes a digit (``"1"``–``"4"``) rather than a letter, so the gold is always compared with ``choices[].label``.

Prompts follow lm-eval and the Likra paper: ``"Question: {stem}\\nAnswer:"``, each option scored as ``" {text}"``.
``fewshot_context`` builds the k-shot prefix (the paper uses 25-shot ARC; zero-shot is the CPU default).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from negrl.benchmarks import default_data_root
from negrl.records import Problem


CONFIGS = {"arc_easy": "ARC-Easy", "arc_challenge": "ARC-Challenge"}
SPLITS = {"train": "Train", "dev": "Dev", "validation": "Dev", "test": "Test"}
HUB_SPLITS = {"train": "train", "dev": "validation", "validation": "validation", "test": "test"}


def prompt_for(stem: str) -> str:
    return f"Question: {stem}\nAnswer:"


def problem_from_row(row: dict[str, Any], name: str, split: str, where: str = "") -> Problem:
    """One ARC row (original JSONL or hub layout) → ``Problem(domain="choice")``; ``where`` names it in errors."""
    try:
        if isinstance(row.get("question"), dict):  # original: {"question": {"stem", "choices": [{text, label}]}}
            stem = row["question"]["stem"]
            choices = [c["text"] for c in row["question"]["choices"]]
            labels = [str(c["label"]) for c in row["question"]["choices"]]
        else:  # hub: {"question": str, "choices": {"text": [...], "label": [...]}}
            stem, choices, labels = row["question"], list(row["choices"]["text"]), [str(x) for x in row["choices"]["label"]]
        key, rid = str(row["answerKey"]).strip(), str(row["id"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{where}: malformed ARC row (missing field {e})") from None
    if key not in labels:
        raise ValueError(f"{where}: answerKey {key!r} is not one of the choice labels {labels}")
    return Problem(
        problem_id=f"{name}:{rid}", domain="choice", prompt=prompt_for(stem), answer=key, choices=choices,
        choice_labels=labels, source=f"{name}:{split}", meta={"stem": stem},
    )


def load_arc(
    name: str = "arc_easy",
    split: str = "test",
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    source: str = "local",
) -> list[Problem]:
    """Load an ARC split as ``Problem`` records, in file order (``limit`` keeps the first ones).

    Args:
        name: ``"arc_easy"`` or ``"arc_challenge"``.
        split: ``"train"``, ``"dev"`` (= ``"validation"``) or ``"test"``.
        root: Data root holding ``arc/`` (default ``default_data_root()``).
        source: ``"local"`` or ``"hub"`` (``allenai/ai2_arc`` through ``datasets``; needs network or a cache).
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown ARC benchmark {name!r}; expected one of {sorted(CONFIGS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if source == "hub":
        from datasets import load_dataset

        rows = list(load_dataset("allenai/ai2_arc", CONFIGS[name], split=HUB_SPLITS[split]))
        problems = [problem_from_row(r, name, split, f"allenai/ai2_arc row {i}") for i, r in enumerate(rows)]
        return problems[:limit] if limit is not None else problems
    if source != "local":
        raise ValueError(f"source must be 'local' or 'hub', got {source!r}")
    path = Path(root or default_data_root()) / "arc" / f"{CONFIGS[name]}-{SPLITS[split]}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (set root=, $NEGRL_DATA, or use source='hub')")
    problems: list[Problem] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(problems) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            problems.append(problem_from_row(row, name, split, f"{path}:{lineno}"))
    return problems


def gold_text(problem: Problem) -> str:
    labels = problem.choice_labels or []
    return (problem.choices or [])[labels.index(problem.answer)] if problem.answer in labels else ""


def fewshot_context(examples: Sequence[Problem], k: int, seed: int = 1234, exclude: set[str] | None = None) -> str:
    """``k`` solved examples as ``"Question: …\\nAnswer: {gold}\\n\\n"`` blocks (lm-eval's format), sampled with ``seed``."""
    if k <= 0:
        return ""
    pool = [p for p in examples if not exclude or p.problem_id not in exclude]
    if len(pool) < k:
        raise ValueError(f"need {k} few-shot examples, only {len(pool)} available")
    shots = random.Random(seed).sample(pool, k)
    return "".join(f"{p.prompt} {gold_text(p)}\n\n" for p in shots)


def _loader(name: str):  # noqa: ANN202 - the registry's Loader signature
    def load(
        path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None, hub: str | None = None,
        **kwargs: Any,
    ) -> list[Problem]:
        if kwargs:
            raise ValueError(f"{name}: unknown option(s) {sorted(kwargs)}")
        return load_arc(name, split, root=path, limit=limit, source="hub" if hub else "local")

    return load


load_arc_easy = _loader("arc_easy")
load_arc_challenge = _loader("arc_challenge")
