"""Device-aware defaults for TRL / transformers training configs.

TRL 1.16 configs turn on ``bf16`` and gradient checkpointing by default. On a CPU the first raises
``ValueError: Your setup doesn't support bf16/gpu`` and the second costs ~15 % for nothing
(``reference/feasibility.md`` §6). negrl's configs mix in ``DeviceDefaults`` so the same YAML runs on a laptop CPU and
on a GPU: ``bf16`` left unset means "bf16 where the GPU supports it, fp32 elsewhere".
"""

from __future__ import annotations

from typing import Any

import torch


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
