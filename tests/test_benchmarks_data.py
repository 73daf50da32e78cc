"""Each benchmark's own reference solutions verify as correct, perturbed ones as incorrect (real files, when present).

Default run: every GSM8K / MATH500 gold, and a subset of the code benchmarks (sandbox runs cost ~0.1 s each); the
``slow`` test runs every HumanEval canonical solution and every MBPP reference program.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from negrl.problems import load_problems
from negrl.records import Problem
from negrl.verifiers import code as code_verifier
from negrl.verifiers import verify
from negrl.verifiers.sandbox import SandboxLimits


SLOW_OK = SandboxLimits(wall_s=60.0, cpu_s=60)  # generous: some MBPP references take seconds on a loaded machine


def _verify_all(pairs: list[tuple[Problem, str]], limits: SandboxLimits | None = None) -> list[bool | None]:
    def one(pc: tuple[Problem, str]) -> bool | None:
        p, c = pc
        return (code_verifier.verify(p, c, limits=limits) if p.domain == "code" else verify(p, c)).correct

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, pairs))


def _bump(answer: str) -> str:
    return str(int(answer) + 1)


def test_gsm8k_gold_solutions(shared_data) -> None:
    problems = load_problems("gsm8k", path=shared_data, split="test")
    assert len(problems) == 1319 and all(p.domain == "math" for p in problems)
    assert all(verify(p, p.solution).correct is True for p in problems)
    assert "<<" not in problems[0].solution and problems[0].answer == "18"
    wrong = [verify(p, p.solution.rsplit("####", 1)[0] + f"#### {_bump(p.answer)}").correct for p in problems]
    assert wrong == [False] * len(problems)  # incl. 7-digit answers off by one


def test_math500_answers(shared_data) -> None:
    problems = load_problems("math500", path=shared_data)
    assert len(problems) == 500
    assert all(verify(p, f"The final answer is $\\boxed{{{p.answer}}}$.").correct is True for p in problems)
    numeric = [p for p in problems if re.fullmatch(r"-?\d+", p.answer)]
    assert len(numeric) > 200
    assert all(verify(p, f"\\boxed{{{_bump(p.answer)}}}").correct is False for p in numeric)


def test_math_full_gold_is_the_last_box(shared_data) -> None:
    problems = load_problems("math", path=shared_data, split="test", limit=200)
    assert all(p.answer for p in problems)
    assert all(verify(p, p.solution).correct is True for p in problems)


def _perturb_code(p: Problem) -> str:
    """A reference program made wrong: the entry point is replaced by one that returns None."""
    entry = p.meta["entry_point"]
    if "code_prefix" in p.meta:  # HumanEval: the canonical body, short-circuited
        return "    return None\n" + p.solution
    return p.solution + f"\n\ndef {entry}(*args, **kwargs):\n    return None\n"


def _code_problems(shared_data, n: int | None) -> list[Problem]:
    return (
        load_problems("humaneval", limit=n)
        + load_problems("mbpp", path=shared_data, split="test", limit=n)
        + load_problems("mbpp_sanitized", path=shared_data, split="test", limit=n // 2 if n else None)
    )


def test_code_references_subset(shared_data) -> None:
    problems = _code_problems(shared_data, 8)
    assert len(problems) == 20 and {p.domain for p in problems} == {"code"}
    assert _verify_all([(p, p.solution) for p in problems]) == [True] * len(problems)
    assert _verify_all([(p, _perturb_code(p)) for p in problems]) == [False] * len(problems)


@pytest.mark.slow
def test_code_references_all(shared_data) -> None:
    problems = (
        load_problems("humaneval")
        + load_problems("mbpp", path=shared_data, split="all")
        + load_problems("mbpp_sanitized", path=shared_data, split="all")
    )
    assert len(problems) == 164 + 974 + 427
    good = _verify_all([(p, p.solution) for p in problems], limits=SLOW_OK)
    # A reference that ran out of wall-clock among 4 parallel sandboxes on a loaded 2-core machine (e.g.
    # mbpp_sanitized:123, ~3.5 s alone) is rechecked alone with a larger limit; a wrong reference still fails.
    alone = SandboxLimits(wall_s=300.0, cpu_s=120)
    failed = [p.problem_id for p, g in zip(problems, good) if g is not True
              and code_verifier.verify(p, p.solution, limits=alone).correct is not True]
    assert failed == [], failed
    bad = _verify_all([(p, _perturb_code(p)) for p in problems], limits=SLOW_OK)
    passed_anyway = [p.problem_id for p, b in zip(problems, bad) if b is not False]
    assert passed_anyway == [], passed_anyway


def test_mbpp_splits_and_fields(shared_data) -> None:
    sizes = {s: len(load_problems("mbpp", path=shared_data, split=s)) for s in ("prompt", "test", "validation", "train")}
    assert sizes == {"prompt": 10, "test": 500, "validation": 90, "train": 374}
    p = load_problems("mbpp", path=shared_data, limit=1)[0]
    assert p.problem_id == "mbpp:11" and p.meta["entry_point"] == "remove_Occ" and len(p.meta["test_cases"]) == 3
    assert p.prompt.startswith("You are an expert Python programmer") and "assert remove_Occ" in p.prompt


def test_loader_errors_name_the_file_and_field(tmp_path) -> None:
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q"}\n')
    with pytest.raises(ValueError, match=r"test.jsonl:2: missing field 'answer'"):
        load_problems("gsm8k", path=bad)
    with pytest.raises(FileNotFoundError):
        load_problems("math500", path=tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_problems("nope")


def test_synthetic_task_loader() -> None:
    test = load_problems("arithmetic", split="test", limit=20, digits=1, max_value=99)
    train = load_problems("arithmetic", split="train", limit=200, digits=1, max_value=99)
    assert len(test) == 20 and len(train) == 200
    assert not {p.problem_id for p in test} & {p.problem_id for p in train}
    assert all(verify(p, p.solution).correct for p in test)


def test_hub_dataset_is_used_only_when_named(monkeypatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return [{"question": "1+1?", "answer": "1+1=2\n#### 2"}, {"question": "2+3?", "answer": "#### 5"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    problems = load_problems("gsm8k", hub="openai/gsm8k", split="test")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [p.answer for p in problems] == ["2", "5"] and problems[0].problem_id == "gsm8k:test:0"
