"""RFT plus a bounded term that pushes down the critical steps of negatives (Setlur et al.'s exploratory on-policy
code; the bounded cousin of negative-sample reinforcement, Zhu et al. 2025).

Objective, over the policy's own samples: the verified-correct ones (token NLL, as RFT) and the wrong ones of
prompts without any correct sample, cut right after their critical step:

    L(θ) = NLL(correct) + c · mean_i(sign_i · σ(s · CE_i))

with ``sign = +1`` for a correct row (``CE`` of its completion) and ``-1`` for a wrong one (``CE`` of its critical
step only: the steps before the pit were fine, the ones after it never got a value). The sigmoid bounds the push
on a negative — once its CE is large the gradient fades — so a wrong step is made unlikely, not driven to zero
probability at the cost of everything else (``negrl.losses.negative_sample_loss``).

Rows: ``negrl.builders.negative.negative_rows`` (``prompt``, ``completion``, ``spans`` of ``[start, end, ±1]``,
``add_eos``), tokenised by ``negrl.completion_tokens.tokenize_weighted`` into per-token signs (``token_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset

from negrl.losses import negative_sample_loss
from negrl.trainers.weighted import (
    TOKEN_COLUMNS,
    WeightedCompletionConfig,
    WeightedCompletionTrainer,
    tokenize_weighted,
)


@dataclass
class BoundedNegativesConfig(WeightedCompletionConfig):
    """Training arguments of RFT + bounded negatives.

    Attributes:
        negative_coef: ``c``, the weight of the bounded term (exploratory code: 0.1).
        negative_scale: ``s``, the CE scale inside the sigmoid (exploratory code: 0.1; CE here is a token mean).
    """

    negative_coef: float = field(default=0.1, metadata={"help": "Weight c of the bounded term."})
    negative_scale: float = field(default=0.1, metadata={"help": "Scale s of CE inside the sigmoid."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Initial AdamW learning rate (LoRA)."})

    def __post_init__(self) -> None:
        if self.negative_coef < 0 or self.negative_scale <= 0:
            raise ValueError(f"BoundedNegativesConfig needs negative_coef >= 0 and negative_scale > 0, got "
                             f"{self.negative_coef} / {self.negative_scale}")
        super().__post_init__()


def tokenize_signed_rows(dataset: Dataset, tokenizer: Any, max_length: int | None = None) -> Dataset:
    """Per-token signs (``token_weights``) from the rows' ``spans``; a positive row's default sign is its own."""
    missing = {"prompt", "completion", "spans", "add_eos", "correct"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"bounded-negatives dataset lacks column(s) {sorted(missing)} (and is not pre-tokenised)")

    def _row(row: dict[str, Any]) -> dict[str, list]:
        return tokenize_weighted(tokenizer, row["prompt"], row["completion"], spans=row["spans"] or None,
                                 default_weight=1.0 if row["correct"] else 0.0, add_eos=bool(row["add_eos"]),
                                 max_length=max_length)

    return dataset.map(_row, desc="tokenize signed rows")


class BoundedNegativesTrainer(WeightedCompletionTrainer):
    """``WeightedCompletionTrainer`` whose ``token_weights`` are signs: +1 positive tokens, -1 critical steps."""

    def _prepare(self, dataset: Dataset | None, tokenizer: Any, args: WeightedCompletionConfig) -> Dataset | None:
        if dataset is None or all(c in dataset.column_names for c in TOKEN_COLUMNS):
            return super()._prepare(dataset, tokenizer, args)
        return tokenize_signed_rows(dataset, tokenizer, max_length=args.max_length)

    def weighted_loss(
        self, token_logps: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        args: BoundedNegativesConfig = self.args  # type: ignore[assignment]
        mask = inputs["completion_mask"][:, 1:]  # (B, T-1)
        signs = inputs["token_weights"][:, 1:]  # (B, T-1)
        loss, nll, bounded = negative_sample_loss(token_logps, signs, mask, args.negative_coef, args.negative_scale)
        with torch.no_grad():
            neg = (signs < 0) & mask.bool()
            neg_logp = token_logps[neg].mean().item() if neg.any() else 0.0
        return loss, {"nll_positive": nll.item(), "bounded_term": bounded.item(), "negative_token_logp": neg_logp}
