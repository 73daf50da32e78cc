"""Advantage-weighted RL with per-step advantages (Setlur et al. 2024, Eq. 4 / Theorem 6.1).

Objective (what is implemented): over rollouts ``y ~ π_sft`` — verified-correct ones and wrong ones truncated right
after their critical step — minimise

    L(θ) = − Σ_t w_t · log π_θ(y_t | x, y_<t) · m_t / Σ_t m_t,        w_t = min(exp(A_{s(t)} / β), w_max)

where ``s(t)`` is the step that token ``t`` belongs to and ``A_i = V_i − V_{i−1}`` is the Monte-Carlo per-step
advantage (``StepLabels.advantages``; tokens outside every labelled step, such as the EOS of a correct rollout or
the steps of an unlabelled positive, have ``A = 0`` → ``w = 1``). This is the standard AWR form of the paper's
equivalent objective: its optimum is ``π*(y_i|·) ∝ π_sft(y_i|·)·exp(A_i/β)``, the policy that per-step DPO on
shared-prefix pairs also converges to (Theorem 6.1). The exponential keeps every weight positive, so the pit step
of a negative is *down-weighted* relative to the useful steps rather than pushed below ``π_sft``; clipping at
``w_max`` (not in the paper) bounds the variance. ``weighting="linear"`` (``w = A/β``, clipped) is offered as the
plain advantage-weighted policy-gradient variant, which does push negative-advantage steps down.

Built on ``negrl.trainers.weighted``: rows from ``negrl.builders.awr_rows`` (``prompt``, ``completion``, ``spans``
of ``[start, end, advantage]``, ``add_eos`` and, when built with the tokenizer, the generated ``completion_ids``) are
tokenised with ``tokenize_weighted`` into per-token advantages (held in the ``token_weights`` column), and the loss
is ``negrl.losses.awr_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset

from negrl.losses import awr_loss, awr_weights
from negrl.trainers.weighted import (
    TOKEN_COLUMNS,
    WeightedCompletionConfig,
    WeightedCompletionTrainer,
    tokenize_weighted,
)


@dataclass
class AWRConfig(WeightedCompletionConfig):
    """Training arguments of advantage-weighted RL.

    Attributes:
        beta: Temperature of ``exp(A/β)``; not stated in what we read of the paper. Advantages lie in [−1, 1], so
            β = 0.5 gives weights in [e⁻², e²].
        weighting: ``"exp"`` (AWR, default) or ``"linear"`` (advantage-weighted policy gradient).
        max_weight: Clip of the weights (``|w| <= max_weight``).
    """

    beta: float = field(default=0.5, metadata={"help": "Temperature of exp(A/beta)."})
    weighting: str = field(default="exp", metadata={"help": "'exp' (AWR) or 'linear'."})
    max_weight: float = field(default=20.0, metadata={"help": "Clip of the per-token weights."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Initial AdamW learning rate (LoRA)."})

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"AWRConfig.beta must be positive, got {self.beta}")
        if self.weighting not in ("exp", "linear"):
            raise ValueError(f"AWRConfig.weighting must be 'exp' or 'linear', got {self.weighting!r}")
        super().__post_init__()


def tokenize_awr_rows(dataset: Dataset, tokenizer: Any, max_length: int | None = None) -> Dataset:
    """Per-token advantages (``token_weights``) from ``spans``; EOS per row's ``add_eos`` (default: append).

    A row's ``completion_ids`` (``awr_rows(..., tokenizer=...)``: the generated ids), when not ``None``, are its
    completion tokens; otherwise the completion text is encoded.
    """
    missing = {"prompt", "completion"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"AWR dataset lacks column(s) {sorted(missing)} (and is not pre-tokenised)")

    def _row(row: dict[str, Any]) -> dict[str, list]:
        return tokenize_weighted(tokenizer, row["prompt"], row["completion"], spans=row.get("spans") or None,
                                 default_weight=0.0, add_eos=bool(row.get("add_eos", True)), max_length=max_length,
                                 completion_ids=row.get("completion_ids"))

    return dataset.map(_row, desc="tokenize AWR rows")


class AWRTrainer(WeightedCompletionTrainer):
    """Advantage-weighted RL on ``WeightedCompletionTrainer``: ``token_weights`` hold per-token advantages."""

    def _prepare(self, dataset: Dataset | None, tokenizer: Any, args: WeightedCompletionConfig) -> Dataset | None:
        if dataset is None or all(c in dataset.column_names for c in TOKEN_COLUMNS):
            return super()._prepare(dataset, tokenizer, args)
        return tokenize_awr_rows(dataset, tokenizer, max_length=args.max_length)

    def weighted_loss(
        self, token_logps: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        args: AWRConfig = self.args  # type: ignore[assignment]
        mask = inputs["completion_mask"][:, 1:]  # (B, T-1)
        advantages = inputs["token_weights"][:, 1:]  # (B, T-1)
        loss = awr_loss(token_logps, advantages, mask, args.beta, args.weighting, args.max_weight)
        with torch.no_grad():
            m = mask.bool()
            w = awr_weights(advantages[m], args.beta, args.weighting, args.max_weight)
            metrics = {
                "advantage_mean": advantages[m].mean().item() if m.any() else 0.0,
                "weight_mean": w.mean().item() if m.any() else 0.0,
                "frac_negative_advantage": (advantages[m] < 0).float().mean().item() if m.any() else 0.0,
            }
        return loss, metrics
