"""Training pairs for Likra's heads from multiple-choice problems, with the paper's choices of negative.

Positive head: (question, gold option). Negative head: one (question, wrong answer) per question, where the wrong
answer comes from (Hamdan & Yuret 2025 §4.3; reference code ``--choice_source`` / ``--cross_check_type``):

- ``source="own"``: the question's own wrong options (near misses), picked ``random`` (paper text), ``first`` in
  list order (reference code ``--balanced``), ``hardest`` (the one the base model scores highest) or ``easiest``
  (scored lowest) — the last two need per-option base scores;
- ``source="other"``: a wrong option of another question;
- ``source="unrelated"``: a text from an unrelated corpus (``unrelated_texts``).

``contamination`` replaces that fraction of negatives by the gold answer (reference code
``--negative_contamination_rate``). Pairs are shuffled with ``seed`` (paper code: 42).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from negrl.likra.scoring import choice_continuations, gold_index
from negrl.records import Problem


SOURCES = ("own", "other", "unrelated")
PICKS = ("random", "first", "hardest", "easiest")


@dataclass
class NegativeSpec:
    """Which wrong answer trains the negative head.

    Attributes:
        source: ``"own"``, ``"other"`` or ``"unrelated"``.
        pick: For ``own``: ``"random"``, ``"first"``, ``"hardest"`` or ``"easiest"``.
        contamination: Fraction in [0, 1] of negatives replaced by the gold answer.
    """

    source: str = "own"
    pick: str = "random"
    contamination: float = 0.0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"negative source must be one of {SOURCES}, got {self.source!r}")
        if self.pick not in PICKS:
            raise ValueError(f"negative pick must be one of {PICKS}, got {self.pick!r}")
        if not 0.0 <= self.contamination <= 1.0:
            raise ValueError(f"contamination must be in [0, 1], got {self.contamination}")


Pairs = tuple[list[str], list[str]]  # (prompts, answers)


def _pick_own(wrong: list[int], pick: str, rng: random.Random, scores: Sequence[float] | None) -> int:
    if pick == "random":
        return rng.choice(wrong)
    if pick == "first":
        return wrong[0]
    if scores is None:
        raise ValueError(f"pick={pick!r} needs the base model's per-option scores (base_scores)")
    key = (lambda i: scores[i]) if pick == "hardest" else (lambda i: -scores[i])
    return max(wrong, key=key)


def choice_pairs(
    problems: Sequence[Problem],
    spec: NegativeSpec | None = None,
    seed: int = 42,
    base_scores: Sequence[Sequence[float]] | None = None,
    unrelated_texts: Sequence[str] | None = None,
    context: str = "",
    answer_prefix: str = " ",
) -> tuple[Pairs, Pairs]:
    """Positive and negative (prompt, answer) pairs, one of each per problem, shuffled with ``seed``.

    Args:
        problems: Multiple-choice problems (``choices`` and a gold ``answer`` label).
        spec: Which negative (see the module docstring).
        base_scores: Per problem, the base model's score of each option (for ``hardest`` / ``easiest``).
        unrelated_texts: The corpus for ``source="unrelated"``.
        context: Few-shot prefix put before every prompt.
        answer_prefix: Put before every option (ARC: ``" "`` after ``"Answer:"``).

    Returns:
        ``((pos_prompts, pos_answers), (neg_prompts, neg_answers))``.
    """
    spec = spec or NegativeSpec()
    if spec.source == "unrelated" and not unrelated_texts:
        raise ValueError("source='unrelated' needs unrelated_texts")
    if base_scores is not None and len(base_scores) != len(problems):
        raise ValueError(f"{len(base_scores)} base score lists for {len(problems)} problems")
    rng = random.Random(seed)
    order = list(range(len(problems)))
    rng.shuffle(order)
    pos: Pairs = ([], [])
    neg: Pairs = ([], [])
    for i in order:
        p = problems[i]
        conts = choice_continuations(p, answer_prefix)
        g = gold_index(p)
        wrong = [j for j in range(len(conts)) if j != g]
        if spec.source == "own":
            if not wrong:
                raise ValueError(f"problem {p.problem_id!r} has no wrong option")
            negative = conts[_pick_own(wrong, spec.pick, rng, base_scores[i] if base_scores else None)]
        elif spec.source == "other":
            other = problems[rng.choice([j for j in range(len(problems)) if j != i])]
            o_conts = choice_continuations(other, answer_prefix)
            o_gold = gold_index(other)
            negative = o_conts[rng.choice([j for j in range(len(o_conts)) if j != o_gold])]
        else:
            negative = answer_prefix + rng.choice(list(unrelated_texts or [])).strip()
        if spec.contamination and rng.random() < spec.contamination:
            negative = conts[g]
        prompt = context + p.prompt
        pos[0].append(prompt)
        pos[1].append(conts[g])
        neg[0].append(prompt)
        neg[1].append(negative)
    return pos, neg
