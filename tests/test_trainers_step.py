"""StepDPOTrainer and AWRTrainer: token ids (no EOS after a truncated rejected step), LoRA training, loss agreement."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig

from negrl.losses import dpo_loss
from negrl.trainers.awr import AWRConfig, AWRTrainer, tokenize_awr_rows
from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer, tokenize_pair, tokenize_pairs
from negrl.trainers.weighted import completion_token_logps


LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def _pairs(n: int = 8) -> Dataset:
    return Dataset.from_dict({
        "prompt": ["Q: (2+3)*4\n"] * n,
        "chosen": ["2+3=5\n5*4=20\nAnswer: 20"] * n,
        "rejected": ["2+3=5\n5*4=25\n"] * n,
        "chosen_eos": [True] * n,
        "rejected_eos": [False] * n,
    })


def _args(tmp_path, **kw) -> StepDPOConfig:
    base = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=3, learning_rate=5e-3,
                logging_steps=1, disable_tqdm=True, seed=0)
    return StepDPOConfig(**{**base, **kw})


def _lora_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


def test_tokenize_pair_no_eos_on_truncated_rejected(char_tokenizer):
    ids = tokenize_pair(char_tokenizer, "Q: 1+2\n", "1+2=3\nAnswer: 3", "1+2=4\n", chosen_eos=True, rejected_eos=False)
    eos = char_tokenizer.eos_token_id
    assert ids["rejected_ids"] == char_tokenizer("1+2=4\n", add_special_tokens=False)["input_ids"]
    assert eos not in ids["rejected_ids"]
    assert ids["chosen_ids"][-1] == eos and ids["chosen_ids"].count(eos) == 1
    assert ids["prompt_ids"] == char_tokenizer("Q: 1+2\n", add_special_tokens=False)["input_ids"]
    both = tokenize_pair(char_tokenizer, "Q\n", "a", "b", chosen_eos=True, rejected_eos=True)
    assert both["rejected_ids"][-1] == eos


def test_tokenize_pairs_defaults_and_max_length(char_tokenizer):
    ds = Dataset.from_dict({"prompt": ["Q: 1\n", "Q: " + "9" * 40 + "\n"], "chosen": ["a", "b"], "rejected": ["c", "d"]})
    out = tokenize_pairs(ds, char_tokenizer, max_length=20)
    assert len(out) == 1  # the long prompt fills max_length: dropped
    assert out[0]["chosen_ids"][-1] == char_tokenizer.eos_token_id  # default: chosen ends the solution
    assert char_tokenizer.eos_token_id not in out[0]["rejected_ids"]  # default: rejected is truncated


def test_step_dpo_config_defaults_are_cpu_safe(tmp_path):
    args = _args(tmp_path, rpo_alpha=0.5)
    assert args.bf16 is False and args.gradient_checkpointing is False
    assert args.loss_type == ["sigmoid", "sft"] and args.loss_weights == [1.0, 0.5]
    assert _args(tmp_path).loss_type == ["sigmoid"]
    with pytest.raises(ValueError, match="rpo_alpha"):
        _args(tmp_path, rpo_alpha=-1.0)


def test_step_dpo_trainer_lora_trains_and_keeps_ids(tmp_path, tiny_model, char_tokenizer):
    trainer = StepDPOTrainer(model=tiny_model, args=_args(tmp_path), train_dataset=_pairs(),
                             processing_class=char_tokenizer, peft_config=LoraConfig(**LORA))
    row = trainer.train_dataset[0]
    eos = char_tokenizer.eos_token_id
    assert eos not in row["rejected_ids"] and row["chosen_ids"][-1] == eos
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    rejected_tokens = batch["input_ids"][2:][batch["completion_mask"][2:].bool()]
    assert eos not in rejected_tokens.tolist()  # the batch the loss sees has no EOS after the pit step
    assert trainer.ref_model is None  # reference = adapter disabled
    before = _lora_state(trainer.model)
    trainer.train()
    after = _lora_state(trainer.model)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(math.isfinite(x) for x in losses)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert losses[-1] < losses[0]  # the same pair every step: the margin grows


def test_in_memory_model_without_peft_gets_a_frozen_copy_as_reference(tmp_path, tiny_model, char_tokenizer):
    trainer = StepDPOTrainer(model=tiny_model, args=_args(tmp_path, max_steps=1), train_dataset=_pairs(4),
                             processing_class=char_tokenizer)
    ref = trainer.ref_model
    assert ref is not None and ref is not trainer.model
    assert all(not p.requires_grad for p in ref.parameters())
    for (_, p), (_, q) in zip(tiny_model.named_parameters(), ref.named_parameters()):
        assert torch.equal(p.detach(), q.detach())


def test_trl_sigmoid_loss_equals_negrl_dpo_loss(tmp_path, tiny_model, char_tokenizer):
    """StepDPOTrainer keeps TRL's loss; check it computes negrl.losses.dpo_loss on a perturbed reference."""
    ref = type(tiny_model)(tiny_model.config)
    ref.load_state_dict(tiny_model.state_dict())
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ref.eval()
    trainer = StepDPOTrainer(model=tiny_model, ref_model=ref, args=_args(tmp_path, beta=0.5),
                             train_dataset=_pairs(2), processing_class=char_tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
        mask = batch["completion_mask"][:, 1:].float()
        pol = (completion_token_logps(tiny_model, batch["input_ids"], batch["attention_mask"]) * mask).sum(-1)
        rf = (completion_token_logps(ref, batch["input_ids"], batch["attention_mask"]) * mask).sum(-1)
    expected = dpo_loss(pol[:2], pol[2:], rf[:2], rf[2:], beta=0.5).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)


def test_awr_rows_tokenize_to_per_token_advantages(char_tokenizer):
    ds = Dataset.from_dict({"prompt": ["Q\n"], "completion": ["ab\ncd\n"], "spans": [[[0, 3, 0.25], [3, 6, -1.0]]],
                            "add_eos": [False]})
    row = tokenize_awr_rows(ds, char_tokenizer)[0]
    assert row["input_ids"] == char_tokenizer("Q\nab\ncd\n", add_special_tokens=False)["input_ids"]
    assert row["completion_mask"] == [0, 0] + [1] * 6
    assert row["token_weights"] == [0.0, 0.0, 0.25, 0.25, 0.25, -1.0, -1.0, -1.0]
    ds2 = ds.map(lambda r: {"add_eos": True})
    row2 = tokenize_awr_rows(ds2, char_tokenizer)[0]
    assert row2["input_ids"][-1] == char_tokenizer.eos_token_id and row2["token_weights"][-1] == 0.0


def test_awr_trainer_lora_trains(tmp_path, tiny_model, char_tokenizer):
    ds = Dataset.from_dict({
        "prompt": ["Q: 1+2\n"] * 8,
        "completion": ["1+2=3\nAnswer: 3", "1+2=4\n"] * 4,
        "spans": [[[0, 6, 0.5]], [[0, 6, -1.0]]] * 4,
        "add_eos": [True, False] * 4,
    })
    args = AWRConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=3, learning_rate=5e-3,
                     logging_steps=1, disable_tqdm=True, seed=0)
    assert args.bf16 is False
    trainer = AWRTrainer(model=tiny_model, args=args, train_dataset=ds, processing_class=char_tokenizer,
                         peft_config=LoraConfig(**LORA))
    before = _lora_state(trainer.model)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and all(math.isfinite(h["loss"]) for h in logs)
    assert all(0.0 <= h["frac_negative_advantage"] <= 1.0 for h in logs)
    assert any(h["frac_negative_advantage"] > 0 for h in logs)  # the negative rows' pit tokens are seen
    assert any(not torch.equal(before[k], v) for k, v in _lora_state(trainer.model).items())


def test_awr_config_validates(tmp_path):
    with pytest.raises(ValueError, match="beta"):
        AWRConfig(output_dir=str(tmp_path), beta=0.0)
    with pytest.raises(ValueError, match="weighting"):
        AWRConfig(output_dir=str(tmp_path), weighting="square")
