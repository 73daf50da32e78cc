"""negrl's training configs print no deprecation warning of their own, and a user's checkpointing flag still works."""

from __future__ import annotations

import pytest

from negrl.sft import NegrlSFTConfig, cpu_safe_sft_config, gold_dataset, train_sft
from negrl.trainers.awr import AWRConfig
from negrl.trainers.step_dpo import StepDPOConfig


DEPRECATED = "`gradient_checkpointing` is deprecated"


def _deprecations(record) -> list[str]:
    return [str(w.message) for w in record if DEPRECATED in str(w.message)]


def test_tiny_sft_run_prints_no_checkpointing_deprecation(tmp_path, recwarn, tiny_model, char_tokenizer,
                                                          arithmetic_task):
    train, _ = arithmetic_task.make_splits(16, 4)
    args = cpu_safe_sft_config(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8,
                               disable_tqdm=True, report_to=[])
    train_sft(tiny_model, char_tokenizer, gold_dataset(train), args)
    for config in (StepDPOConfig, AWRConfig):
        assert config(output_dir=str(tmp_path)).gradient_checkpointing is False  # still off by default
    assert args.gradient_checkpointing is False and args.activation_checkpointing is False
    assert _deprecations(recwarn.list) == []


@pytest.mark.parametrize("config", [NegrlSFTConfig, StepDPOConfig])
def test_checkpointing_can_still_be_turned_on(tmp_path, config):
    assert config(output_dir=str(tmp_path), activation_checkpointing=True, use_cpu=True).gradient_checkpointing is True
    with pytest.warns(FutureWarning, match=DEPRECATED):  # the user's own deprecated spelling: warned, and honoured
        old = config(output_dir=str(tmp_path), gradient_checkpointing=True, use_cpu=True)
    assert old.activation_checkpointing is True
