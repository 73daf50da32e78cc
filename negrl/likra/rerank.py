"""Likra as a reranker on generation tasks (what the paper could not do: it scored multiple choice only).

Sample k solutions per problem from a policy, verify them, train the ``pos`` head on verified-correct and the ``neg``
head on verified-wrong solutions of *training* problems, then on held-out problems pick the candidate with the
highest score ``log p_pos(s|q) − w·log p_neg(s|q)``. Reported against: random choice (expected accuracy = mean
fraction correct), majority vote of the extracted answers, the positive head alone (SFT), the base alone, and the
oracle (pass@k). Verdicts with ``correct=None`` are never used as negatives (or positives).

Likra produces a *reranker*, not a policy, so it does not fit the comparison's ``METHODS`` (each returns a trained
policy that is evaluated by generation); the experiment that samples, trains the heads and reranks is
``negrl.experiments.likra_rerank.run_rerank``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from negrl.likra.scoring import BASE, byte_lengths
from negrl.losses import choice_predictions, likra_scores
from negrl.metrics import majority_vote
from negrl.records import Problem, Rollout, Verdict


def verified_pairs(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict], dedupe: bool = True
) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """``((pos_prompts, pos_completions), (neg_prompts, neg_completions))`` from verified rollouts (None skipped)."""
    by_id = {p.problem_id: p for p in problems}
    verdict_of = {v.rollout_id: v for v in verdicts}
    pos: tuple[list[str], list[str]] = ([], [])
    neg: tuple[list[str], list[str]] = ([], [])
    seen: set[tuple[str, str]] = set()
    for r in rollouts:
        v = verdict_of.get(r.rollout_id)
        if v is None or v.correct is None or (dedupe and (r.problem_id, r.completion) in seen):
            continue
        seen.add((r.problem_id, r.completion))
        target = pos if v.correct else neg
        target[0].append(by_id[r.problem_id].prompt)
        target[1].append(r.completion)
    return pos, neg


def group_candidates(rollouts: Sequence[Rollout]) -> dict[str, list[int]]:
    """problem id → indices of its rollouts (in input order)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rollouts):
        groups[r.problem_id].append(i)
    return dict(groups)


def top_candidates(scores: torch.Tensor, groups: dict[str, list[int]]) -> dict[str, int]:
    """problem id → index (into ``scores``) of its highest-scored candidate; ``scores`` is ``(N,)``."""
    ids = list(groups)
    flat = torch.tensor([i for pid in ids for i in groups[pid]], dtype=torch.long)
    best = choice_predictions(scores[flat], [len(groups[pid]) for pid in ids])
    return {pid: groups[pid][int(b)] for pid, b in zip(ids, best)}


def rerank_metrics(
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    logps: dict[str, torch.Tensor],
    ws: Sequence[float] = (1.0,),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Accuracy of each selection rule over the problems of ``rollouts``: ``[{method, w, norm, acc}]``.

    ``logps`` holds per-rollout answer log-likelihoods of the heads (``pos``, ``neg``, ``base``). ``random`` is the
    expected accuracy of a uniformly random pick; ``random_draw`` one seeded draw.
    """
    verdict_of = {v.rollout_id: v for v in verdicts}
    ok = [verdict_of[r.rollout_id].correct is True for r in rollouts]
    groups = group_candidates(rollouts)
    n = len(groups)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = [
        {"method": "oracle_pass@k", "acc": sum(any(ok[i] for i in g) for g in groups.values()) / n},
        {"method": "random", "acc": sum(sum(ok[i] for i in g) / len(g) for g in groups.values()) / n},
        {"method": "random_draw", "acc": sum(ok[rng.choice(g)] for g in groups.values()) / n},
        {"method": "majority", "acc": sum(
            bool(majority_vote([verdict_of[rollouts[i].rollout_id].extracted for i in g], [ok[i] for i in g]))
            for g in groups.values()) / n},
    ]
    lengths = byte_lengths([r.completion for r in rollouts])
    for mode in ("sft", "base", "likra", "base_likra"):
        for w in ws if mode in ("likra", "base_likra") else (1.0,):
            for norm in (False, True):
                if any(h not in logps for h in ("pos", "neg", BASE) if h in _heads(mode)):
                    continue
                scores = likra_scores(logps, mode, w, lengths if norm else None)
                top = top_candidates(scores, groups)
                rows.append({"method": mode, "w": w, "norm": norm, "acc": sum(ok[i] for i in top.values()) / n})
    return rows


def _heads(mode: str) -> set[str]:
    from negrl.losses import likra_head_weights

    return set(likra_head_weights(mode))
