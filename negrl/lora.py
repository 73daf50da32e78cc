"""The one LoRA default of negrl: rank 16, alpha 32, no dropout, every linear layer of a causal LM.

Every method, the PRM and the BCPG-NSA rounds build their adapter here; a YAML ``lora:`` mapping (or a
``BCPGRunConfig``'s ``lora_*`` fields) overrides single keys. The defaults are negrl's choice for small models,
not a paper's.
"""

from __future__ import annotations

from typing import Any


DEFAULT_LORA: dict[str, Any] = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear",
                                "task_type": "CAUSAL_LM"}


def lora_config(**overrides: Any) -> Any:
    """``peft.LoraConfig`` of ``DEFAULT_LORA`` with ``overrides`` (any ``LoraConfig`` field)."""
    from peft import LoraConfig

    return LoraConfig(**{**DEFAULT_LORA, **overrides})
