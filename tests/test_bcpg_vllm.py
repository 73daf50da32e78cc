"""BCPG-NSA rounds on the vLLM backend, without vLLM: a fake ``vllm`` module records what the rounds hand it.

The fake's ``LLM`` only accepts a model path (a torch model there would be the bug this covers), answers every
request in vLLM's output shape (``RequestOutput.outputs[j]``: ``text``, ``token_ids``, ``finish_reason``,
``stop_reason``) with canned right and wrong solutions, and records each request's ``LoRARequest``.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


# --------------------------------------------------------------------------------------------------- stacking


def _random_adapter(model, r: int, alpha: int, seed: int):
    from peft import get_peft_model

    from negrl.lora import lora_config

    torch.manual_seed(seed)
    return get_peft_model(model, lora_config(r=r, lora_alpha=alpha, init_lora_weights=False))


def test_stacked_adapter_on_the_base_equals_the_merged_rounds(tmp_path):
    """Round 1's LoRA is trained on round 0's merged policy; the stacked adapter on the base gives the same weights."""
    from peft import PeftModel

    from negrl.lora import stack_lora_adapters
    from negrl.modeling import build_tiny_llama

    def base():
        return build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)

    p0 = _random_adapter(base(), r=4, alpha=8, seed=1)
    p0.save_pretrained(tmp_path / "a0")
    p1 = _random_adapter(p0.merge_and_unload(), r=2, alpha=16, seed=2)  # other rank and scaling
    p1.save_pretrained(tmp_path / "a1")
    want = p1.merge_and_unload().state_dict()

    out = stack_lora_adapters([tmp_path / "a0", tmp_path / "a1"], tmp_path / "stacked", base_model="the-base")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 6 and config["lora_alpha"] == 6 and config["base_model_name_or_path"] == "the-base"
    got = PeftModel.from_pretrained(base(), str(out)).merge_and_unload().state_dict()
    assert set(got) == set(want)
    worst = max((got[k] - want[k]).abs().max().item() for k in want)
    assert worst < 1e-5, worst
    first = base().state_dict()
    assert any((want[k] - first[k]).abs().max() > 1e-3 for k in want)  # the rounds did change the weights


def test_stacking_refuses_adapters_of_other_modules(tmp_path):
    from peft import get_peft_model

    from negrl.lora import lora_config, stack_lora_adapters
    from negrl.modeling import build_tiny_llama

    model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    _random_adapter(model, 4, 8, 0).save_pretrained(tmp_path / "a0")
    model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    get_peft_model(model, lora_config(target_modules=["q_proj"])).save_pretrained(tmp_path / "a1")
    with pytest.raises(ValueError, match="other modules"):
        stack_lora_adapters([tmp_path / "a0", tmp_path / "a1"], tmp_path / "s")
