"""Likra as a reranker, the experiment: sample k solutions per problem through the shared pipeline's stages, verify,
train the ``pos`` / ``neg`` heads on verified samples of training problems, rerank held-out samples
(``negrl.likra.rerank.rerank_metrics``). ``recipes/likra_rerank.py`` is its command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.experiments.config import build, write_resolved_config
from negrl.experiments.pipeline import PipelineConfig, sample_rollouts, split_problems
from negrl.likra.heads import LikraConfig, attach_heads, train_head
from negrl.likra.rerank import rerank_metrics, verified_pairs
from negrl.likra.scoring import BASE, answer_logprobs
from negrl.records import Problem
from negrl.verifiers import verify_rollouts


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
        """Checked by the harness's config loader: unknown or mistyped keys name ``where`` (``heads`` nested)."""
        return build(cls, d, where)


def _pipeline_samples(cfg: RerankConfig, problems: list[Problem], model: Any, tokenizer: Any, sub: str, seed: int):
    """k verified samples per problem through the pipeline's resumable sampling stage (``{output_dir}/{sub}``)."""
    pcfg = PipelineConfig(base_policy=cfg.base_policy, output_dir=str(Path(cfg.output_dir) / sub), task=cfg.task,
                          task_kwargs=cfg.task_kwargs, seed=seed, samples_per_prompt=cfg.k,
                          temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    rollouts = sample_rollouts(pcfg, problems, model, tokenizer)
    return rollouts, verify_rollouts(problems, rollouts)


def run_rerank(cfg: RerankConfig) -> list[dict[str, Any]]:
    """The whole reranking experiment; returns ``rerank_metrics`` rows plus a ``counts`` row."""
    from negrl.modeling import load_policy

    out = Path(cfg.output_dir)
    write_resolved_config(out / "config.json", {"rerank": cfg})
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
