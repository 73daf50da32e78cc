"""Likra as a reranker on generation tasks (what the paper could not do: it scored multiple choice only).

Sample k solutions per problem from a policy, verify them, train the ``pos`` head on verified-correct and the ``neg``
head on verified-wrong solutions of *training* problems, then on held-out problems pick the candidate with the
highest score ``log p_pos(s|q) − w·log p_neg(s|q)``. Reported against: random choice (expected accuracy = mean
fraction correct), majority vote of the extracted answers, the positive head alone (SFT), the base alone, and the
oracle (pass@k). Verdicts with ``correct=None`` are never used as negatives (or positives).

Likra produces a *reranker*, not a policy, so it does not fit the pipeline's ``METHODS`` (each returns a trained
policy that is evaluated by generation); ``run_rerank`` uses the same generation and verifiers instead.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from negrl.likra.heads import LikraConfig, attach_heads, train_head, write_run_config
from negrl.likra.scoring import BASE, answer_logprobs, byte_lengths
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


@dataclass
class RerankConfig:
    """A reranking run on the shared pipeline's data: sample, verify, train both heads, rerank held-out samples.

    Attributes:
        base_policy: Policy directory (or id) that samples the candidates; the heads are LoRA on it.
        output_dir: Where the pipeline stages (rollouts), the heads and ``rerank.jsonl`` go.
        task / task_kwargs: The task (an embedded task or a benchmark of ``negrl.benchmarks``).
        k: Samples per problem (temperature ``temperature``), for training and for reranking.
        n_train / n_test: Training prompts (verified samples train the heads) / held-out problems reranked.
        heads: LoRA settings of both heads (their ``seed`` is replaced by ``seed``).
        ws: Negative-head weights reported.
        seed: Sampling and training seed (the heads' LoRA init and data order too).
    """

    base_policy: str = "runs/base/arithmetic"
    output_dir: str = "outputs/likra/rerank_arithmetic"
    task: str = "arithmetic"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    k: int = 8
    n_train: int = 512
    n_test: int = 256
    temperature: float = 1.0
    max_new_tokens: int = 64
    heads: LikraConfig = field(default_factory=lambda: LikraConfig(learning_rate=3e-3, batch_size=16))
    ws: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    score_batch_size: int = 64
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> RerankConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        d = dict(d)
        if isinstance(d.get("heads"), dict):
            d["heads"] = LikraConfig(**d["heads"])
        return cls(**d)


def _pipeline_samples(cfg: RerankConfig, problems: list[Problem], model: Any, tokenizer: Any, sub: str, seed: int):
    """k verified samples per problem through the pipeline's resumable sampling stage (``{output_dir}/{sub}``)."""
    from negrl.pipeline import PipelineConfig, sample_rollouts
    from negrl.verifiers import verify_rollouts

    pcfg = PipelineConfig(base_policy=cfg.base_policy, output_dir=str(Path(cfg.output_dir) / sub), task=cfg.task,
                          task_kwargs=cfg.task_kwargs, seed=seed, samples_per_prompt=cfg.k,
                          temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    rollouts = sample_rollouts(pcfg, problems, model, tokenizer)
    return rollouts, verify_rollouts(problems, rollouts)


def run_rerank(cfg: RerankConfig) -> list[dict[str, Any]]:
    """The whole reranking experiment; returns ``rerank_metrics`` rows plus a ``counts`` row."""
    from negrl.modeling import load_policy
    from negrl.pipeline import PipelineConfig, split_problems

    out = Path(cfg.output_dir)
    write_run_config(out, rerank=cfg)
    train, test = split_problems(PipelineConfig(base_policy=cfg.base_policy, task=cfg.task,
                                                task_kwargs=cfg.task_kwargs, n_prompts=cfg.n_train,
                                                n_test=cfg.n_test, seed=cfg.seed))
    model, tokenizer = load_policy(cfg.base_policy)
    tr_rollouts, tr_verdicts = _pipeline_samples(cfg, train, model, tokenizer, "train", cfg.seed)
    te_rollouts, te_verdicts = _pipeline_samples(cfg, test, model, tokenizer, "test", cfg.seed + 1)
    (pp, pa), (np_, na) = verified_pairs(train, tr_rollouts, tr_verdicts)
    if not pa or not na:
        raise ValueError(f"need both verified positives and negatives; got {len(pa)} and {len(na)}")
    heads = dataclasses.replace(cfg.heads, seed=cfg.seed)
    peft_model = attach_heads(model, heads)
    train_head(peft_model, tokenizer, "pos", pp, pa, heads, out, disable_tqdm=True)
    train_head(peft_model, tokenizer, "neg", np_, na, heads, out, disable_tqdm=True)
    by_id = {p.problem_id: p for p in test}
    logps = answer_logprobs(peft_model, tokenizer, [by_id[r.problem_id].prompt for r in te_rollouts],
                            [r.completion for r in te_rollouts], heads=("pos", "neg", BASE),
                            batch_size=cfg.score_batch_size)
    rows = rerank_metrics(te_rollouts, te_verdicts, logps, cfg.ws, cfg.seed)
    rows.append({"method": "counts", "train_pos": len(pa), "train_neg": len(na), "test_candidates": len(te_rollouts),
                 "test_problems": len(test)})
    return rows
