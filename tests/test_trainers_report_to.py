"""Trainers honour ``report_to``: ``tensorboard`` writes event files offline (the documented way to watch a run)."""

from __future__ import annotations

import pytest
from datasets import Dataset
from peft import LoraConfig

from negrl.trainers.awr import AWRConfig, AWRTrainer
from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer


pytest.importorskip("tensorboard", reason="pip install negrl[tensorboard]")

LORA = dict(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")


def _scalars(logdir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in logdir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def test_awr_and_step_dpo_log_to_tensorboard(tmp_path, tiny_model, char_tokenizer):
    common = dict(per_device_train_batch_size=4, max_steps=2, learning_rate=5e-3, logging_steps=1, disable_tqdm=True,
                  seed=0, report_to=["tensorboard"])
    awr_rows = Dataset.from_dict({"prompt": ["Q: 1+2\n"] * 4, "completion": ["1+2=3\nAnswer: 3", "1+2=4\n"] * 2,
                                  "spans": [[[0, 6, 0.5]], [[0, 6, -1.0]]] * 2, "add_eos": [True, False] * 2})
    args = AWRConfig(output_dir=str(tmp_path / "awr"), **common)
    AWRTrainer(model=tiny_model, args=args, train_dataset=awr_rows, processing_class=char_tokenizer,
               peft_config=LoraConfig(**LORA)).train()
    assert "train/loss" in _scalars(tmp_path / "awr")

    from negrl.modeling import build_tiny_llama

    pairs = Dataset.from_dict({"prompt": ["Q: (2+3)*4\n"] * 4, "chosen": ["2+3=5\n5*4=20\nAnswer: 20"] * 4,
                               "rejected": ["2+3=5\n5*4=25\n"] * 4, "chosen_eos": [True] * 4, "rejected_eos": [False] * 4})
    dpo_args = StepDPOConfig(output_dir=str(tmp_path / "dpo"), **common)
    model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    StepDPOTrainer(model=model, args=dpo_args, train_dataset=pairs, processing_class=char_tokenizer,
                   peft_config=LoraConfig(**LORA)).train()
    assert "train/loss" in _scalars(tmp_path / "dpo")
