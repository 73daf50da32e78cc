"""What every builder starts from: a problem's verified rollouts, and counts of what a builder kept or dropped."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from negrl.records import Problem, Rollout, Verdict


PromptFn = Callable[[Problem], str]


@dataclass
class BuildStats:
    """Counts of what a builder kept and why it dropped the rest (logged by the pipeline)."""

    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped": dict(self.dropped)}


@dataclass
class RolloutGroup:
    """One problem with its verified rollouts."""

    problem: Problem
    correct: list[Rollout]
    wrong: list[Rollout]


def group_rollouts(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict]
) -> list[RolloutGroup]:
    """Join records on ids; rollouts the verifier could not judge (``correct is None``) are in neither list."""
    by_verdict = {v.rollout_id: v for v in verdicts}
    by_problem: dict[str, list[Rollout]] = defaultdict(list)
    for r in rollouts:
        by_problem[r.problem_id].append(r)
    groups = []
    for p in problems:
        rs = sorted(by_problem.get(p.problem_id, []), key=lambda r: r.sample_index)
        missing = [r.rollout_id for r in rs if r.rollout_id not in by_verdict]
        if missing:
            raise ValueError(f"rollout {missing[0]!r} has no verdict ({len(missing)} missing)")
        correct = [r for r in rs if by_verdict[r.rollout_id].correct is True]
        wrong = [r for r in rs if by_verdict[r.rollout_id].correct is False]
        groups.append(RolloutGroup(problem=p, correct=correct, wrong=wrong))
    return groups


def unique_texts(texts: list[str]) -> list[str]:
    """``texts`` without repeats, in first-seen order."""
    return list(dict.fromkeys(texts))
