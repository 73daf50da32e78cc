"""Step labels ⇄ the stepwise-supervision format of TRL's former ``PRMTrainer`` and the public PRM data sets.

A row is ``{"prompt": str, "completions": list[str], "labels": list[bool]}`` (one completion string per step); negrl
adds ``problem_id``, ``domain``, ``rollout_id`` and ``source`` columns, which TRL-style trainers ignore. Files are a
``datasets.Dataset`` directory (``save_to_disk``) or JSONL (a path ending in ``.jsonl``)::

    save_stepwise(to_stepwise_dataset(problems, labels), "runs/steps/stepwise")     # or ".../labels.jsonl"
    problems, rollouts, labels = from_stepwise(load_stepwise("runs/steps/stepwise"))

The format has no "unknown": a row keeps the steps up to the first unknown (``None``) label, and a rollout with
no known label is left out. Importing joins the step strings with ``separator`` into the completion (``""`` for
negrl's own exports, whose steps carry their newlines; e.g. ``"\\n"`` for data sets whose steps do not).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from negrl.records import Problem, Rollout, Step, StepLabels


STEPWISE_COLUMNS = ("prompt", "completions", "labels")


def stepwise_rows(problems: Sequence[Problem], step_labels: Sequence[StepLabels]) -> list[dict[str, Any]]:
    """One stepwise row per labelled rollout (rollout ids ``"{problem_id}#k"``), known labels only."""
    by_id = {p.problem_id: p for p in problems}
    rows = []
    for lab in step_labels:
        pid = lab.rollout_id.rsplit("#", 1)[0]
        if pid not in by_id:
            raise ValueError(f"stepwise_rows: rollout {lab.rollout_id!r} does not name a known problem "
                             "('problem_id#k')")
        known = next((i for i, x in enumerate(lab.labels) if x is None), len(lab.labels))
        if known == 0:
            continue
        rows.append({"prompt": by_id[pid].prompt, "completions": [s.text for s in lab.steps[:known]],
                     "labels": [bool(x) for x in lab.labels[:known]], "problem_id": pid, "domain": by_id[pid].domain,
                     "rollout_id": lab.rollout_id, "source": lab.source})
    return rows


def to_stepwise_dataset(problems: Sequence[Problem], step_labels: Sequence[StepLabels]) -> Any:
    """``datasets.Dataset`` of ``stepwise_rows`` (columns ``prompt``, ``completions``, ``labels``, ids, source)."""
    from datasets import Dataset

    rows = stepwise_rows(problems, step_labels)
    columns = (*STEPWISE_COLUMNS, "problem_id", "domain", "rollout_id", "source")
    return Dataset.from_dict({c: [r[c] for r in rows] for c in columns})


def save_stepwise(dataset: Any, path: str | os.PathLike) -> Path:
    """Write a stepwise ``Dataset`` to ``path``: JSONL for ``*.jsonl``, else a ``save_to_disk`` directory."""
    path = Path(path)
    if path.suffix == ".jsonl":
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.to_json(str(path), lines=True, force_ascii=False)
    else:
        dataset.save_to_disk(str(path))
    return path


def load_stepwise(path: str | os.PathLike) -> Any:
    """A stepwise ``Dataset`` from a ``save_to_disk`` directory or a JSONL file; refuses rows of another format."""
    from datasets import Dataset, load_from_disk

    path = Path(path)
    if path.is_dir():
        ds = load_from_disk(str(path))
    elif path.exists():
        ds = Dataset.from_json(str(path))
    else:
        raise FileNotFoundError(f"{path}: no stepwise data set (a save_to_disk directory or a .jsonl file)")
    missing = [c for c in STEPWISE_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path}: not stepwise-supervision rows: missing column(s) {missing} "
                         f"(has {ds.column_names}; expected {list(STEPWISE_COLUMNS)})")
    return ds


def from_stepwise(rows: Any, separator: str = "", source: str = "stepwise",
                  domain: str = "math") -> tuple[list[Problem], list[Rollout], list[StepLabels]]:
    """Problems, rollouts and ``StepLabels`` from stepwise rows (a ``Dataset`` or a list of dicts).

    Rows without ``problem_id`` / ``rollout_id`` get ``stepwise-{i}`` / ``stepwise-{i}#0``; imported problems have
    the row's prompt and its ``domain`` column, else ``domain`` (no gold answer: the format has none).
    """
    problems: dict[str, Problem] = {}
    rollouts, labels = [], []
    for i, row in enumerate(rows):
        texts, marks = list(row["completions"]), list(row["labels"])
        if len(texts) != len(marks):
            raise ValueError(f"stepwise row {i}: {len(texts)} completions but {len(marks)} labels")
        if any(not isinstance(m, bool) for m in marks):
            raise ValueError(f"stepwise row {i}: labels must be booleans, got {marks}")
        pid = row.get("problem_id") or f"stepwise-{i}"
        rid = row.get("rollout_id") or f"{pid}#0"
        problems.setdefault(pid, Problem(problem_id=pid, domain=row.get("domain") or domain, prompt=row["prompt"]))
        steps, at = [], 0
        for j, text in enumerate(texts):
            text = text + (separator if j < len(texts) - 1 else "")
            steps.append(Step(text=text, start=at, end=at + len(text)))
            at += len(text)
        first = next((j for j, m in enumerate(marks) if not m), None)
        rollouts.append(Rollout(rollout_id=rid, problem_id=pid, completion="".join(s.text for s in steps)))
        labels.append(StepLabels(rollout_id=rid, steps=steps, values=[float(m) for m in marks], labels=marks,
                                 first_error=first, source=row.get("source") or source))
    return list(problems.values()), rollouts, labels
