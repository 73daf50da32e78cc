"""Device-aware defaults for TRL / transformers training configs.

TRL 1.16 configs turn on ``bf16`` and gradient checkpointing by default. On a CPU the first raises
``ValueError: Your setup doesn't support bf16/gpu`` and the second costs ~15 % for nothing. negrl's configs mix in
``DeviceDefaults`` so the same YAML runs on a laptop CPU and on a GPU: ``bf16`` left unset means "bf16 where the GPU
supports it, fp32 elsewhere".

They also mix in ``CheckpointDefaults``: every training run saves a checkpoint each tenth of its steps and keeps the
last two, so a killed run resumes (``negrl.trainers.resume``) having lost at most a tenth of its work, whatever its
length, and a kill while a checkpoint is being written still leaves the previous one.

``WarmupCheck`` (added to every run by ``negrl.trainers.resume.train_resuming``) warns when the warmup covers the
whole run: a fixed ``warmup_steps: 10`` with 2 optimizer steps trains at LR 0, then at a tenth of ``learning_rate``.
A ``warmup_steps`` below 1 is a fraction of the run and scales with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import SaveStrategy


logger = logging.getLogger(__name__)


# A fraction (< 1) of the run's total optimizer steps: transformers turns it into ceil(fraction x max_steps).
SAVE_STEPS = 0.1
SAVE_TOTAL_LIMIT = 2


def bf16_supported() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


class DeviceDefaults:
    """Mixin placed before a TRL config class: resolves ``bf16=None`` by device and selects the CPU when there is no GPU.

    Subclasses of TRL configs (whose default is on) also redeclare ``gradient_checkpointing`` unset, which
    transformers resolves to off without its deprecation warning (tiny models gain nothing from checkpointing).
    """

    bf16: Any
    fp16: Any
    use_cpu: Any

    def __post_init__(self) -> None:
        if self.bf16 is None:
            self.bf16 = bf16_supported() and not self.fp16
        if not torch.cuda.is_available():
            self.use_cpu = True
        super().__post_init__()  # type: ignore[misc]


@dataclass
class CheckpointDefaults:
    """Mixin dataclass placed before a TRL / transformers config class: checkpoints that make a run resumable.

    ``save_strategy="no"`` still turns checkpoints off (such a run restarts from step 0 when killed).
    """

    save_strategy: SaveStrategy | str = field(
        default="steps", metadata={"help": "Checkpoint strategy: steps (default: resumable), epoch or no."})
    save_steps: float = field(
        default=SAVE_STEPS, metadata={"help": "Steps between checkpoints; < 1: a fraction of the run (0.1: a tenth)."})
    save_total_limit: int | None = field(
        default=SAVE_TOTAL_LIMIT, metadata={"help": "Checkpoints kept (2: one survives a kill while saving)."})


# Schedulers that ignore ``warmup_steps`` (no warning for them).
NO_WARMUP_SCHEDULERS = ("constant", "reduce_lr_on_plateau")


def warmup_covers_run(warmup_steps: int, total_steps: int, learning_rate: float) -> str | None:
    """The warning text when ``warmup_steps >= total_steps`` (the LR never reaches ``learning_rate``), else None."""
    if total_steps <= 0 or warmup_steps < total_steps:
        return None
    # Linear warmup: optimizer step s (0-based) runs at learning_rate * s / warmup_steps.
    peak = learning_rate * (total_steps - 1) / warmup_steps
    return (f"warmup_steps={warmup_steps} >= the run's {total_steps} optimizer steps: the learning rate never "
            f"reaches learning_rate={learning_rate:g} (the first step trains at 0, the last at {peak:.3g}). "
            "Set warmup_steps below the run's length, or to a fraction < 1 of it (0.1 = a tenth of the steps).")


class WarmupCheck(TrainerCallback):
    """Logs ``warmup_covers_run``'s warning at the start of training, once the run's total steps are known."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        scheduler = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
        if scheduler in NO_WARMUP_SCHEDULERS or not state.is_world_process_zero:
            return
        message = warmup_covers_run(args.get_warmup_steps(state.max_steps), state.max_steps, args.learning_rate)
        if message:
            logger.warning("%s (output_dir=%s)", message, args.output_dir)
