"""The one LoRA default of negrl: rank 16, alpha 32, no dropout, every linear layer of a causal LM.

Every method, the PRM and the BCPG-NSA rounds build their adapter here; a YAML ``lora:`` mapping (or a
``BCPGRunConfig``'s ``lora_*`` fields) overrides single keys. The defaults are negrl's choice for small models,
not a paper's.

``stack_lora_adapters`` writes the adapters of successive rounds (each trained on the model merged with the ones
before) as ONE adapter on the first round's base, so an engine of the base model (vLLM) serves any round.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


DEFAULT_LORA: dict[str, Any] = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear",
                                "task_type": "CAUSAL_LM"}


def lora_config(**overrides: Any) -> Any:
    """``peft.LoraConfig`` of ``DEFAULT_LORA`` with ``overrides`` (any ``LoraConfig`` field)."""
    from peft import LoraConfig

    return LoraConfig(**{**DEFAULT_LORA, **overrides})


def _scaling(config: dict[str, Any]) -> float:
    """peft's LoRA scaling of an adapter config: ``lora_alpha / r`` (``/ sqrt(r)`` with rsLoRA)."""
    r = config["r"]
    return config["lora_alpha"] / (math.sqrt(r) if config.get("use_rslora") else r)


def stack_lora_adapters(adapters: Sequence[str | os.PathLike], output_dir: str | os.PathLike,
                        base_model: str | None = None) -> Path:
    """One peft LoRA adapter equal to applying ``adapters`` in order, each trained on the model merged with the ones
    before it; written to ``output_dir`` (returned).

    The merged updates add up: ``ΔW = Σ s_i B_i A_i = [s_0 B_0 | s_1 B_1 | …] · [A_0; A_1; …]``, an adapter of rank
    ``Σ r_i`` with scaling 1 (``lora_alpha = r``), exact up to the rounding of the merged weights. Every adapter must
    be a plain LoRA (no DoRA, bias, per-module ranks or ``modules_to_save``) on the same modules.
    ``base_model`` is recorded as ``base_model_name_or_path`` (default: the first adapter's).
    """
    import torch
    from safetensors.torch import load_file, save_file

    if not adapters:
        raise ValueError("stack_lora_adapters: no adapters given")
    configs, weights = [], []
    for path in map(Path, adapters):
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        unsupported = {k: config.get(k) for k in ("use_dora", "bias", "rank_pattern", "alpha_pattern",
                                                  "modules_to_save", "lora_bias") if config.get(k) not in
                       (None, False, "none", {}, [])}  # fmt: skip
        if config.get("peft_type") != "LORA" or unsupported:
            raise ValueError(f"{path}: only plain LoRA adapters stack; this one has {unsupported or config.get('peft_type')}")
        state = load_file(str(path / "adapter_model.safetensors"))
        if weights and set(state) != set(weights[0]):
            raise ValueError(f"{path}: adapts other modules than {adapters[0]}; adapters stack only on the same modules")
        configs.append(config)
        weights.append(state)
    stacked: dict[str, Any] = {}
    for key in weights[0]:
        parts = [w[key].float() for w in weights]
        if ".lora_A." in key:  # [r_i, in] -> [Σ r_i, in]
            stacked[key] = torch.cat(parts, dim=0)
        elif ".lora_B." in key:  # [out, r_i] -> [out, Σ r_i], each scaled by its own s_i
            stacked[key] = torch.cat([p * _scaling(c) for p, c in zip(parts, configs)], dim=1)
        else:
            raise ValueError(f"{adapters[0]}: unexpected adapter weight {key!r} (only lora_A / lora_B stack)")
        stacked[key] = stacked[key].to(weights[-1][key].dtype).contiguous()
    rank = sum(c["r"] for c in configs)
    config = {**configs[-1], "r": rank, "lora_alpha": rank, "use_rslora": False,
              "base_model_name_or_path": base_model or configs[0].get("base_model_name_or_path")}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(stacked, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    return out
