"""What every builder starts from: a problem's verified rollouts, counts of what a builder kept or dropped, and the
rollouts' generated token ids cut on token boundaries (``GeneratedTokens``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from negrl.records import Problem, Rollout, Verdict
from negrl.steps.monte_carlo import token_cut


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


@dataclass
class TokenPrefix:
    """The first tokens of a rollout's generated ids and the text they decode to (a prefix of its completion)."""

    ids: list[int]
    text: str


class GeneratedTokens:
    """Cuts of rollouts' *generated* token ids on token boundaries, so that trained rows hold the tokens the policy
    produced rather than a re-encoding of cut text.

    With a byte-level BPE tokenizer, re-encoding ``completion[:end]`` can give tokens the policy never generated
    (SmolLM2: a generated ``Ċ Ċ`` becomes one ``ĊĊ`` at the end of a cut text; a ``ĊĠ`` token straddles a line
    end). ``cut(rollout, end)`` keeps the largest token boundary at or before the character offset ``end``, with the
    same ``negrl.steps.monte_carlo.token_cut`` the Monte-Carlo continuations are cut with. A rollout is usable when it
    kept ``completion_ids`` and they decode to its completion; ``cut`` returns ``None`` for the others (records
    written before ids were kept, or ids of another tokenizer), and builders then fall back to text.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._usable: dict[str, bool] = {}

    def usable(self, rollout: Rollout) -> bool:
        """Whether the rollout's ``completion_ids`` exist and decode to its completion (cached per rollout id)."""
        ok = self._usable.get(rollout.rollout_id)
        if ok is None:
            ids = rollout.completion_ids
            ok = bool(ids) and self.tokenizer.decode(list(ids), skip_special_tokens=True) == rollout.completion
            self._usable[rollout.rollout_id] = ok
        return ok

    def cut(self, rollout: Rollout, end: int) -> TokenPrefix | None:
        """The generated ids up to the largest token boundary at or before character ``end`` (``None``: unusable)."""
        if not self.usable(rollout):
            return None
        ids = list(rollout.completion_ids or [])
        if end >= len(rollout.completion):
            return TokenPrefix(ids, rollout.completion)
        n = token_cut(self.tokenizer, ids, rollout.completion, end)
        if n is None:
            return None
        return TokenPrefix(ids[:n], self.tokenizer.decode(ids[:n], skip_special_tokens=True))
