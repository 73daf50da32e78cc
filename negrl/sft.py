"""Supervised fine-tuning on prompt/completion rows with TRL's ``SFTTrainer``.

Used for the embedded base policy (gold demonstrations), RFT (the policy's own verified-correct samples) and the
Likra heads. ``sft_config`` applies the settings TRL needs on CPU: TRL
turns on bf16 and gradient checkpointing by default, which fail or slow down on CPU.

Rows are tokenised here (``tokenize_sft_rows``), not by TRL, the way generation saw them: the prompt alone without
special tokens, BOS by the one rule of every stage (``negrl.generation.with_bos``), then the completion's tokens and
EOS. TRL's own encoding of a text prompt adds the tokenizer's special tokens, so a chat template that renders BOS
would train on two of them while sampling saw one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from negrl.completion_tokens import tokenize_weighted
from negrl.generation.config import with_bos
from negrl.quiet import quiet_library
from negrl.records import Problem
from negrl.trainer_defaults import CheckpointDefaults, DeviceDefaults
from negrl.trainers.resume import train_resuming


@dataclass
class NegrlSFTConfig(DeviceDefaults, CheckpointDefaults, SFTConfig):
    """``SFTConfig`` with device-aware precision, resumable checkpoints, no gradient checkpointing by default."""

    # Unset rather than False: transformers 5 resolves an unset pair to "off", while any value here goes through
    # the deprecated alias and prints a FutureWarning on every config (``activation_checkpointing`` turns it on).
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing (unset: off, for tiny models)."})


def tokenize_sft_rows(dataset: Dataset, tokenizer: Any) -> Dataset:
    """``input_ids`` / ``completion_mask`` of prompt-completion rows, as sampling and the other trainers encode them.

    The prompt gets BOS once where the tokenizer adds one (``with_bos``: raw gold prompts and prompts already built
    by ``format_prompt`` alike), prompt and completion are encoded separately without special tokens
    (``negrl.completion_tokens.tokenize_weighted``) and EOS is appended unless the completion already ends with it
    or the row says ``add_eos: false`` (a sample cut by the token limit, ``rft_rows``).
    A row's ``completion_ids`` (the sample's generated ids, ``rft_rows(tokenizer=...)``; ``None`` for none) are its
    completion tokens instead of a re-encoding of its text. A dataset that already has ``input_ids`` is returned as
    is.
    """
    if "input_ids" in dataset.column_names:
        return dataset
    missing = {"prompt", "completion"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"SFT dataset needs columns 'prompt' and 'completion' or 'input_ids' (missing {sorted(missing)})")
    eos = tokenizer.eos_token

    def _row(row: dict[str, Any]) -> dict[str, list[int]]:
        enc = tokenize_weighted(tokenizer, with_bos(row["prompt"], tokenizer), row["completion"],
                                add_eos=bool(row.get("add_eos", True)) and not (eos and row["completion"].endswith(eos)),
                                completion_ids=row.get("completion_ids"))  # fmt: skip
        return {"input_ids": enc["input_ids"], "completion_mask": enc["completion_mask"]}

    return dataset.map(_row, remove_columns=dataset.column_names, desc="tokenize SFT rows")


def prompt_completion_dataset(prompts: Sequence[str], completions: Sequence[str]) -> Dataset:
    """TRL prompt-completion rows; ``SFTTrainer`` appends ``<eos>`` to each completion and masks the prompt."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    return Dataset.from_dict({"prompt": list(prompts), "completion": list(completions)})


def gold_dataset(problems: Sequence[Problem]) -> Dataset:
    """SFT rows from the gold solutions of ``problems`` (every problem must have one)."""
    missing = [p.problem_id for p in problems if not p.solution]
    if missing:
        raise ValueError(f"{len(missing)} problems have no gold solution, e.g. {missing[0]!r}")
    return prompt_completion_dataset([p.prompt for p in problems], [p.solution for p in problems])  # type: ignore[misc]


def cpu_safe_sft_config(**kwargs: Any) -> NegrlSFTConfig:
    """A ``NegrlSFTConfig`` (device-safe precision, completion-only loss, resumable checkpoints) from keyword overrides."""
    defaults: dict[str, Any] = {"completion_only_loss": True, "logging_steps": 50, "max_length": 512}
    defaults.update(kwargs)
    return NegrlSFTConfig(**defaults)


def train_sft(
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    args: SFTConfig,
    peft_config: Any | None = None,
    callbacks: list[Any] | None = None,
) -> SFTTrainer:
    """Run ``SFTTrainer`` on prompt-completion rows (tokenised by ``tokenize_sft_rows``) or tokenised rows, resuming
    from the last checkpoint of ``args.output_dir`` (``negrl.trainers.resume``); returns the trainer (its ``model``
    is the trained policy)."""
    tokenizer.padding_side = "right"
    rows = tokenize_sft_rows(dataset, tokenizer)
    with quiet_library():  # TRL's preprocessing bars, peft's deprecation notice, the short-run mtime notice
        trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                             peft_config=peft_config, callbacks=callbacks)  # fmt: skip
        train_resuming(trainer)
    tokenizer.padding_side = "left"
    return trainer
