"""BCPG-NSA trainer: behaviour-constrained policy gradient with negative sample augmentation (arXiv 2505.14403).

A thin ``WeightedCompletionTrainer``: the rows (``negrl.builders.bcpg.bcpg_dataset``) carry per-token weights
``β_ij`` (β on correct steps mined inside negatives, 1 elsewhere; Eq. 7), the advantage ``r − r̄`` and the behaviour
log-probability ``log π_ref(y|x)`` precomputed once, so no reference model is loaded. The loss is
``negrl.losses.bcpg_nsa_loss`` (Eq. 6, negated):

    J = (1/G) Σ_i (1/|y_i|) [ Σ_j β_ij (r_i − r̄) log π(y_ij|x, y_i,<j) − (τ/2) (log π(y_i|x) − log π_ref(y_i|x))² ]

Defaults from the paper (Tables 7–8): ``τ = 1e-3``; the learning rate (max 5e-7 → min 2.5e-7 over 8 epochs for full
fine-tuning of a 14B model) does not transfer to LoRA or to tiny models, so ``learning_rate`` is left to the recipe.
``normalization="sequence"`` is the paper's ``1/|y_i|``; ``"token_mean"`` is offered as an alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset

from negrl.losses import BCPG_NORMALIZATIONS, bcpg_nsa_loss
from negrl.trainers.resume import train_resuming
from negrl.trainers.weighted import WeightedCompletionConfig, WeightedCompletionTrainer


@dataclass
class BCPGNSAConfig(WeightedCompletionConfig):
    """``TrainingArguments`` plus BCPG-NSA's knobs.

    Attributes:
        tau: Behaviour-constraint factor τ of Eq. 6 (paper: 1e-3).
        normalization: ``"sequence"`` (paper: each sample's sum divided by its length ``|y_i|``) or ``"token_mean"``
            (batch sums divided by the batch's completion-token count).
    """

    tau: float = field(default=1e-3, metadata={"help": "Behaviour-constraint factor τ (paper: 1e-3)."})
    normalization: str = field(default="sequence", metadata={"help": "'sequence' (paper, 1/|y|) or 'token_mean'."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalization not in BCPG_NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {BCPG_NORMALIZATIONS}, got {self.normalization!r}")
        if self.tau < 0:
            raise ValueError(f"tau must be >= 0, got {self.tau}")


class BCPGNSATrainer(WeightedCompletionTrainer):
    """Trains on ``bcpg_dataset`` rows; β is already in ``token_weights`` (β = 1 everywhere is plain BCPG)."""

    scalar_columns = ("advantage", "ref_logp")

    def __init__(self, model: Any, args: BCPGNSAConfig, train_dataset: Dataset | None = None, **kwargs: Any) -> None:
        for ds in (train_dataset, kwargs.get("eval_dataset")):
            if ds is not None and not {"advantage", "ref_logp"} <= set(ds.column_names):
                raise ValueError("BCPG-NSA rows need 'advantage' and 'ref_logp' columns (negrl.builders.bcpg)")
        super().__init__(model, args, train_dataset=train_dataset, **kwargs)

    def weighted_loss(
        self, token_logps: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        loss, metrics = bcpg_nsa_loss(
            token_logps,  # (B, T-1)
            inputs["completion_mask"][:, 1:],
            inputs["token_weights"][:, 1:],
            inputs["advantage"],  # (B,)
            inputs["ref_logp"],  # (B,)
            tau=self.args.tau,
            normalization=self.args.normalization,
        )
        return loss, {k: v.item() for k, v in metrics.items()}


def train_bcpg_nsa(
    model: Any, tokenizer: Any, dataset: Dataset, args: BCPGNSAConfig, peft_config: Any | None = None
) -> BCPGNSATrainer:
    """Train on ``bcpg_dataset`` rows, resuming from the last checkpoint of ``args.output_dir``
    (``negrl.trainers.resume``); returns the trainer (its ``model`` is the trained policy, LoRA-wrapped if asked)."""
    trainer = BCPGNSATrainer(model, args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
    train_resuming(trainer)
    return trainer
