"""Weighted-completion training: per-token weights on prompt/completion rows, shared by BCPG-NSA and AWR.

Several of negrl's objectives are sums over completion tokens of ``weight(token) · log π(token | prefix)`` plus a
method-specific term: BCPG-NSA (weight β on mined correct steps of a negative, times the advantage r − r̄) and
advantage-weighted RL (per-step advantages). They share three pieces; the first two live in
``negrl.completion_tokens`` (the builders use them too) and are re-exported here:

1. ``tokenize_weighted`` and 2. ``WeightedCompletionCollator`` (see ``negrl.completion_tokens``: token ids, a
   completion mask and per-token weights from character spans; right padding);
3. ``WeightedCompletionTrainer`` — a ``transformers.Trainer`` that keeps those columns, computes the per-token
   log-probabilities of the completion tokens once per batch, shape ``(B, T-1)``, and hands them to
   ``weighted_loss``, which subclasses implement with a pure function from ``negrl.losses``.

Conventions: position ``t`` of the ``(B, T-1)`` tensors scores token ``input_ids[:, t+1]``; masks and weights are
shifted the same way (``completion_mask[:, 1:]``, ``token_weights[:, 1:]``). Padding and prompt tokens have mask 0
and weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from negrl.completion_tokens import (  # noqa: F401  (re-exported: the trainers' row format)
    TOKEN_COLUMNS,
    WeightedCompletionCollator,
    completion_token_logps,
    sequence_logps,
    span_weights,
    tokenize_weighted,
    tokenize_weighted_dataset,
)
from negrl.quiet import quiet_library
from negrl.trainer_defaults import CheckpointDefaults, DeviceDefaults


@dataclass
class WeightedCompletionConfig(DeviceDefaults, CheckpointDefaults, TrainingArguments):
    """``TrainingArguments`` for weighted-completion trainers (device-aware bf16, resumable checkpoints).

    Attributes:
        max_length: Tokens kept per row when the trainer tokenises ``prompt``/``completion`` rows itself.
        add_eos: Append EOS to completions when tokenising (finished samples).
    """

    bf16: bool | None = field(default=None, metadata={"help": "None: bf16 only on a bf16-capable GPU."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})

    max_length: int | None = field(default=1024, metadata={"help": "Max tokens per row (prompt + completion)."})
    add_eos: bool = field(default=True, metadata={"help": "Append EOS to each completion when tokenising."})


class WeightedCompletionTrainer(Trainer):
    """A ``Trainer`` over weighted completion rows; subclasses implement ``weighted_loss``.

    The dataset holds either ``TOKEN_COLUMNS`` (pre-tokenised, e.g. by a builder that also precomputed reference
    log-probs on exactly those ids) or ``prompt``/``completion`` (+ optional ``spans``) rows, tokenised here.
    Columns in ``scalar_columns`` are kept and collated as ``(B,)`` float tensors. ``peft_config`` wraps the model
    with a fresh LoRA adapter. Losses are per-micro-batch means, so ``loss_is_scaled_for_ga = False`` lets
    ``Trainer`` divide by the number of gradient-accumulation steps.
    """

    loss_is_scaled_for_ga = False
    scalar_columns: tuple[str, ...] = ()

    def __init__(
        self,
        model: Any,
        args: WeightedCompletionConfig,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | None = None,
        processing_class: Any = None,
        peft_config: Any | None = None,
        data_collator: Any | None = None,
        **kwargs: Any,
    ) -> None:
        if processing_class is None:
            raise ValueError(f"{type(self).__name__} needs processing_class (the tokenizer)")
        if peft_config is not None:
            from peft import get_peft_model
            from transformers import set_seed

            # The adapter's random init must depend on args.seed alone (TRL's trainers seed before wrapping too),
            # not on what the process ran before: Trainer.__init__ seeds only after this point.
            set_seed(args.seed)
            if args.gradient_checkpointing:
                model.enable_input_require_grads()  # checkpointed frozen embeddings must still pass gradients
            model = get_peft_model(model, peft_config)
        train_dataset = self._prepare(train_dataset, processing_class, args)
        eval_dataset = self._prepare(eval_dataset, processing_class, args)
        if data_collator is None:
            data_collator = WeightedCompletionCollator(processing_class.pad_token_id, self.scalar_columns)
        with quiet_library():  # peft's is_gradient_checkpointing FutureWarning
            super().__init__(
                model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                processing_class=processing_class, data_collator=data_collator, **kwargs,
            )
        self.can_return_loss = True  # evaluation computes the loss although there is no `labels` column
        self._metrics: dict[str, dict[str, list[float]]] = {"train": {}, "eval": {}}

    def _prepare(self, dataset: Dataset | None, tokenizer: Any, args: WeightedCompletionConfig) -> Dataset | None:
        if dataset is None or "input_ids" in dataset.column_names:
            missing = set() if dataset is None else set(TOKEN_COLUMNS) - set(dataset.column_names)
            if missing:
                raise ValueError(f"pre-tokenised dataset lacks column(s) {sorted(missing)}")
            return dataset
        return tokenize_weighted_dataset(dataset, tokenizer, max_length=args.max_length, add_eos=args.add_eos)

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = [*TOKEN_COLUMNS, *self.scalar_columns]

    def weighted_loss(
        self, token_logps: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return ``(loss, metrics)`` from ``token_logps`` ``(B, T-1)`` and the batch; implemented by subclasses.

        ``inputs["completion_mask"][:, 1:]`` and ``inputs["token_weights"][:, 1:]`` line up with ``token_logps``.
        """
        raise NotImplementedError

    def compute_loss(
        self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        token_logps = completion_token_logps(model, inputs["input_ids"], inputs["attention_mask"])  # (B, T-1)
        loss, metrics = self.weighted_loss(token_logps, inputs)
        mode = "train" if model.training else "eval"
        for name, value in metrics.items():
            self._metrics[mode].setdefault(name, []).append(float(value))
        return (loss, {"token_logps": token_logps}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the averaged metrics of the current mode (``eval_`` prefixed in evaluation) to ``logs``."""
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        for name, values in self._metrics[mode].items():
            if values:
                logs[prefix + name] = sum(values) / len(values)
        self._metrics[mode] = {}
        super().log(logs, start_time)
