"""Math benchmarks: GSM8K, MATH (full, Hendrycks et al.) and MATH500 (PRM800K's test subset) → ``Problem``.

Gold answers: GSM8K — the text after ``#### `` with thousands separators removed; MATH — the last ``\\boxed{}`` of
the solution (``None`` if there is none, so such problems are never scored wrong); MATH500 — its ``answer`` field.
Prompts are the bare question; ``eval/`` adds few-shot examples or a chat template per benchmark.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from negrl.benchmarks import field, hub_records, read_records, resolve_file
from negrl.records import Problem
from negrl.verifiers.math import last_boxed


_CALC_RE = re.compile(r"<<[^>]*>>")


def _rows(
    path: str | os.PathLike | None, relative: str, hub: str | None, hub_config: str | None, split: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    return hub_records(hub, hub_config, split) if hub else read_records(resolve_file(path, relative))


def _take(rows: Iterator[tuple[str, dict[str, Any]]], convert: Any, limit: int | None) -> list[Problem]:
    out: list[Problem] = []
    for i, (where, row) in enumerate(rows):
        if limit is not None and len(out) >= limit:
            break
        out.append(convert(i, where, row))
    return out


def gsm8k_gold(answer_text: str, where: str = "") -> str:
    """The final answer of a GSM8K ``answer`` field: after the last ``####``, commas removed."""
    if "####" not in answer_text:
        raise ValueError(f"{where}: GSM8K answer has no '####' line")
    return answer_text.rsplit("####", 1)[1].strip().replace(",", "")


def load_gsm8k(
    path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None,
    hub: str | None = None, hub_config: str | None = "main",
) -> list[Problem]:  # fmt: skip
    """GSM8K ``train`` / ``test``. ``solution`` is the gold reasoning without ``<<calculator>>`` tags, ending ``#### x``."""
    if split not in ("train", "test"):
        raise ValueError(f"gsm8k splits are 'train' and 'test', got {split!r}")

    def convert(i: int, where: str, row: dict[str, Any]) -> Problem:
        question, answer = field(row, "question", where, str), field(row, "answer", where, str)
        return Problem(
            problem_id=f"gsm8k:{split}:{i}", domain="math", prompt=question, answer=gsm8k_gold(answer, where),
            solution=_CALC_RE.sub("", answer), source=f"gsm8k:{split}", meta={"question": question},
        )

    return _take(_rows(path, f"gsm8k/{split}.jsonl", hub, hub_config, split), convert, limit)


def _math_problem(name: str, split: str, where: str, row: dict[str, Any], answer: str | None) -> Problem:
    question = field(row, "problem", where, str)
    uid = row.get("unique_id") or where
    meta = {"question": question, "level": row.get("level"), "subject": row.get("subject") or row.get("type")}
    return Problem(
        problem_id=f"{name}:{uid}", domain="math", prompt=question, answer=answer,
        solution=row.get("solution"), source=f"{name}:{split}", meta=meta,
    )  # fmt: skip


def load_math(
    path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None,
    hub: str | None = None, hub_config: str | None = None,
) -> list[Problem]:  # fmt: skip
    """MATH ``train`` (7,500) / ``test`` (5,000); gold = last ``\\boxed{}`` of the solution."""
    if split not in ("train", "test"):
        raise ValueError(f"math splits are 'train' and 'test', got {split!r}")

    def convert(i: int, where: str, row: dict[str, Any]) -> Problem:
        gold = last_boxed(field(row, "solution", where, str))
        return _math_problem("math", split, where, row, gold.strip() if gold else None)

    return _take(_rows(path, f"math/{split}.jsonl", hub, hub_config, split), convert, limit)


def load_math500(
    path: str | os.PathLike | None = None, split: str = "test", limit: int | None = None,
    hub: str | None = None, hub_config: str | None = None,
) -> list[Problem]:  # fmt: skip
    """MATH500 ``test`` (500 problems; the ``answer`` field is the gold)."""
    if split != "test":
        raise ValueError(f"math500 has only the 'test' split, got {split!r}")

    def convert(i: int, where: str, row: dict[str, Any]) -> Problem:
        return _math_problem("math500", split, where, row, str(field(row, "answer", where)))

    return _take(_rows(path, "math500/test.jsonl", hub, hub_config, split), convert, limit)
