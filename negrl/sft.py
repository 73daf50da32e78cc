"""Supervised fine-tuning on prompt/completion rows with TRL's ``SFTTrainer``.

Used for the embedded base policy (gold demonstrations), RFT (the policy's own verified-correct samples) and the
Likra heads. ``cpu_safe_sft_config`` applies the settings TRL needs on CPU (``reference/feasibility.md`` §6): TRL
turns on bf16 and gradient checkpointing by default, which fail or slow down on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from negrl.records import Problem


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


def device_overrides() -> dict[str, Any]:
    """TRL/transformers settings for the current device: fp32 without checkpointing on CPU, bf16 on a GPU."""
    if torch.cuda.is_available():
        return {"bf16": torch.cuda.is_bf16_supported(), "gradient_checkpointing": False}
    return {"bf16": False, "use_cpu": True, "gradient_checkpointing": False}


def cpu_safe_sft_config(**kwargs: Any) -> SFTConfig:
    """An ``SFTConfig`` with completion-only loss, no reports or checkpoints unless asked, and device-safe precision."""
    defaults: dict[str, Any] = {
        "report_to": "none",
        "save_strategy": "no",
        "completion_only_loss": True,
        "logging_steps": 50,
        "dataset_num_proc": None,
        "max_length": 512,
        **device_overrides(),
    }
    defaults.update(kwargs)
    return SFTConfig(**defaults)


def train_sft(model: Any, tokenizer: Any, dataset: Dataset, args: SFTConfig, peft_config: Any | None = None) -> SFTTrainer:
    """Run ``SFTTrainer`` on prompt-completion rows; returns the trainer (its ``model`` is the trained policy)."""
    tokenizer.padding_side = "right"
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    tokenizer.padding_side = "left"
    return trainer
