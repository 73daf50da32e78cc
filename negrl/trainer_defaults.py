"""Device-aware defaults for TRL / transformers training configs.

TRL 1.16 configs turn on ``bf16`` and gradient checkpointing by default. On a CPU the first raises
``ValueError: Your setup doesn't support bf16/gpu`` and the second costs ~15 % for nothing. negrl's configs mix in
``DeviceDefaults`` so the same YAML runs on a laptop CPU and on a GPU: ``bf16`` left unset means "bf16 where the GPU
supports it, fp32 elsewhere".

They also mix in ``CheckpointDefaults``: every training run saves a checkpoint each tenth of its steps and keeps the
last two, so a killed run resumes (``negrl.trainers.resume``) having lost at most a tenth of its work, whatever its
length, and a kill while a checkpoint is being written still leaves the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.trainer_utils import SaveStrategy


# A fraction (< 1) of the run's total optimizer steps: transformers turns it into ceil(fraction x max_steps).
SAVE_STEPS = 0.1
SAVE_TOTAL_LIMIT = 2


def bf16_supported() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


class DeviceDefaults:
    """Mixin placed before a TRL config class: resolves ``bf16=None`` by device and selects the CPU when there is no GPU.

    Subclasses also redeclare ``gradient_checkpointing: bool = False`` (tiny models gain nothing from it).
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
