"""Rows of RFT + bounded negatives (``negrl.trainers.bounded_negatives``): correct samples and critical steps.

Positives are RFT's rows (unique verified-correct samples, sign +1, EOS when the sample finished). Negatives are the
wrong samples of the prompts that have *no* correct sample — where RFT gets no signal at all — cut right after their
Monte-Carlo critical step, with sign -1 on that step and 0 on the steps before it (they kept a chance of success).
``prompts="all"`` takes the negatives of every prompt instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from negrl.builders.groups import BuildStats, PromptFn, group_rollouts, unique_texts
from negrl.records import Problem, Rollout, StepLabels, Verdict


NEGATIVE_PROMPTS = ("all_wrong", "all")


def negative_rows(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    step_labels: Sequence[StepLabels],
    prompt_fn: PromptFn | None = None,
    prompts: str = "all_wrong",
    stats: BuildStats | None = None,
) -> Dataset:
    """``prompt``, ``completion``, ``spans`` (``[[start, end, ±1]]``), ``add_eos``, ``problem_id``, ``correct`` rows.

    ``stats`` counts the rows kept and the negatives dropped (``no_pit``: no critical step; ``has_positive``: the
    prompt has a correct sample and ``prompts="all_wrong"``; ``duplicate``).
    """
    if prompts not in NEGATIVE_PROMPTS:
        raise ValueError(f"negative_rows: prompts must be one of {NEGATIVE_PROMPTS}, got {prompts!r}")
    stats = stats if stats is not None else BuildStats()
    labels = {sl.rollout_id: sl for sl in step_labels}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for g in group_rollouts(problems, rollouts, verdicts):
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        pid = g.problem.problem_id
        for text in unique_texts([r.completion for r in g.correct]):
            rows[(prompt, text)] = {"prompt": prompt, "completion": text, "spans": [[0, len(text), 1.0]],
                                    "add_eos": True, "problem_id": pid, "correct": True}
        for r in g.wrong:
            sl = labels.get(r.rollout_id)
            if g.correct and prompts == "all_wrong":
                stats.drop("has_positive")
                continue
            if sl is None or sl.first_error is None:
                stats.drop("no_pit")
                continue
            step = sl.steps[sl.first_error]
            text = r.completion[: step.end]
            if (prompt, text) in rows:
                stats.drop("duplicate")
                continue
            rows[(prompt, text)] = {"prompt": prompt, "completion": text, "spans": [[step.start, step.end, -1.0]],
                                    "add_eos": False, "problem_id": pid, "correct": False}
    stats.kept = len(rows)
    columns = ["prompt", "completion", "spans", "add_eos", "problem_id", "correct"]
    return Dataset.from_dict({k: [row[k] for row in rows.values()] for k in columns})
