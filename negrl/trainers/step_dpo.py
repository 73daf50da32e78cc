"""Per-step DPO (Setlur et al. 2024) as a thin subclass of TRL's ``DPOTrainer``.

TRL 1.16's ``DPOTrainer._prepare_dataset`` appends EOS to *both* ``chosen`` and ``rejected`` and re-tokenises
(checked on TRL 1.16). For per-step DPO the rejected text is a negative truncated right after its
critical step: with an EOS the loss would teach "do not stop after the pit" instead of "do not take the pit step".
``StepDPOTrainer`` therefore tokenises the rows itself (``tokenize_pair``): EOS is appended only where the row's
``chosen_eos`` / ``rejected_eos`` column says the text ends the solution (defaults when the columns are absent:
chosen ``True``, rejected ``False``). A side whose ``prompt_token_ids`` / ``chosen_token_ids`` /
``rejected_token_ids`` column holds ids (``negrl.builders.step_dpo_pairs(..., tokenizer=...)``: the ids the policy
generated, cut on token boundaries) is taken from them instead of encoding its text, EOS still per the flags. Rows
that already hold TRL's ``prompt_ids`` / ``chosen_ids`` / ``rejected_ids`` are used as they are. Everything else —
collator, loss (``loss_type="sigmoid"``, i.e. ``negrl.losses.dpo_loss``), reference handling — is TRL's.

Reference policy = the SFT policy: pass ``peft_config`` and the reference is the same model with the LoRA adapter
disabled. Without peft, an in-memory model gets a frozen deep copy as reference, because TRL would otherwise reload
``config._name_or_path`` from disk (fails for in-memory models, silently stale for modified ones; §6.4).

``StepDPOConfig`` changes TRL's GPU-oriented defaults: bf16 only on a bf16-capable GPU, no gradient checkpointing,
a learning rate for LoRA (TRL's 1e-6 is meant for full fine-tuning of large models), no checkpoints or reports
unless asked, and ``rpo_alpha`` (RPO: add ``rpo_alpha`` × NLL of the chosen completion, TRL ``loss_type``
``["sigmoid", "sft"]``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from negrl.generation.config import with_bos
from negrl.quiet import quiet_library
from negrl.trainer_defaults import CheckpointDefaults, DeviceDefaults


PAIR_ID_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


@dataclass
class StepDPOConfig(DeviceDefaults, CheckpointDefaults, DPOConfig):
    """``DPOConfig`` with device-safe defaults and the per-step DPO knobs.

    Attributes:
        rpo_alpha: Weight of an NLL term on the chosen completion (RPO; 0 = plain DPO). A stabiliser that
            helped the tiny embedded-task policy in our runs; not part of Setlur et al.
        beta: DPO temperature; 0.1 follows Self-Explore (Setlur et al. do not state theirs in what we read).
        learning_rate: 5e-5 (LoRA; not from the paper). Tiny from-scratch models want 1e-5 .. 1e-4.
    """

    rpo_alpha: float = field(default=0.0, metadata={"help": "Weight of the NLL term on chosen (RPO); 0 = off."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Initial AdamW learning rate (LoRA)."})
    beta: float = field(default=0.1, metadata={"help": "DPO temperature (Self-Explore: 0.1)."})
    # Unset rather than False: transformers 5 resolves an unset pair to "off", while any value here goes through
    # the deprecated alias and prints a FutureWarning on every config (``activation_checkpointing`` turns it on).
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing (unset: off, for tiny models)."})
    bf16: bool | None = field(default=None, metadata={"help": "None: bf16 only on a bf16-capable GPU."})
    report_to: Any = field(default="none", metadata={"help": "Loggers to report to."})

    def __post_init__(self) -> None:
        if self.rpo_alpha < 0:
            raise ValueError(f"rpo_alpha must be >= 0, got {self.rpo_alpha}")
        if self.rpo_alpha > 0:
            types = [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type)
            if "sft" not in types:
                self.loss_weights = list(self.loss_weights or [1.0] * len(types)) + [self.rpo_alpha]
                self.loss_type = types + ["sft"]
        super().__post_init__()


def tokenize_pair(
    tokenizer: Any, prompt: str, chosen: str, rejected: str, chosen_eos: bool = True, rejected_eos: bool = False,
    prompt_token_ids: Sequence[int] | None = None, chosen_token_ids: Sequence[int] | None = None,
    rejected_token_ids: Sequence[int] | None = None,
) -> dict[str, list[int]]:
    """Token ids of one preference row; EOS only on a side that ends the solution.

    Prompt and completions are tokenised separately (no special tokens), as generation saw them: the prompt was
    encoded alone and the completion tokens followed it. A side given as ``*_token_ids`` (the generated ids the
    builder cut) is taken as it is, instead of encoding its text.
    """
    if not isinstance(prompt, str) or not isinstance(chosen, str) or not isinstance(rejected, str):
        raise TypeError("StepDPOTrainer expects plain-text prompt/chosen/rejected (format chat prompts beforehand)")
    eos = tokenizer.eos_token_id
    if eos is None and (chosen_eos or rejected_eos):
        raise ValueError("the tokenizer has no eos_token_id")
    def ids(text: str, given: Sequence[int] | None) -> list[int]:
        return list(given) if given is not None else list(tokenizer(text, add_special_tokens=False)["input_ids"])

    return {
        "prompt_ids": ids(with_bos(prompt, tokenizer), prompt_token_ids),  # BOS once, as generation saw it
        "chosen_ids": ids(chosen, chosen_token_ids) + ([eos] if chosen_eos else []),
        "rejected_ids": ids(rejected, rejected_token_ids) + ([eos] if rejected_eos else []),
    }


def tokenize_pairs(dataset: Dataset, tokenizer: Any, max_length: int | None = None) -> Dataset:
    """Add ``prompt_ids`` / ``chosen_ids`` / ``rejected_ids`` to rows of ``prompt``/``chosen``/``rejected`` (and the
    optional ``*_token_ids`` columns of generated ids, see ``tokenize_pair``).

    Rows whose prompt alone fills ``max_length`` are dropped (TRL does the same: no completion token would be left).
    """
    if all(c in dataset.column_names for c in PAIR_ID_COLUMNS):
        tokenized = dataset
    else:
        missing = {"prompt", "chosen", "rejected"} - set(dataset.column_names)
        if missing:
            raise ValueError(f"preference dataset lacks column(s) {sorted(missing)} (and is not pre-tokenised)")

        def _row(row: dict[str, Any]) -> dict[str, list[int]]:
            return tokenize_pair(tokenizer, row["prompt"], row["chosen"], row["rejected"],
                                 bool(row.get("chosen_eos", True)), bool(row.get("rejected_eos", False)),
                                 row.get("prompt_token_ids"), row.get("chosen_token_ids"), row.get("rejected_token_ids"))

        tokenized = dataset.map(_row, desc="tokenize step-DPO pairs")
    if max_length is not None:
        tokenized = tokenized.filter(lambda row: len(row["prompt_ids"]) < max_length)
    return tokenized


class StepDPOTrainer(DPOTrainer):
    """``DPOTrainer`` for per-step pairs: no EOS on truncated rejected sequences, safe reference (module docstring)."""

    def __init__(
        self,
        model: Any,
        ref_model: Any | None = None,
        args: StepDPOConfig | None = None,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | None = None,
        processing_class: Any | None = None,
        peft_config: Any | None = None,
        **kwargs: Any,
    ) -> None:
        if processing_class is None:
            raise ValueError("StepDPOTrainer needs processing_class (the tokenizer that made the pairs)")
        if (ref_model is None and peft_config is None and isinstance(model, torch.nn.Module)
                and not hasattr(model, "peft_config") and not (args and args.precompute_ref_log_probs)):
            ref_model = copy.deepcopy(model).eval()  # never let TRL reload a stale reference from disk
            for p in ref_model.parameters():
                p.requires_grad_(False)
        with quiet_library():  # peft's is_gradient_checkpointing FutureWarning, TRL's preprocessing bars
            super().__init__(model=model, ref_model=ref_model, args=args, train_dataset=train_dataset,
                             eval_dataset=eval_dataset, processing_class=processing_class, peft_config=peft_config,
                             **kwargs)

    def _prepare_dataset(self, dataset: Dataset, processing_class: Any, args: DPOConfig, dataset_name: str) -> Dataset:
        """Tokenise with per-row EOS flags instead of TRL's unconditional EOS (see the module docstring)."""
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        max_length = args.max_length if args.truncation_mode == "keep_start" else None
        return tokenize_pairs(dataset, tokenizer, max_length=max_length)
