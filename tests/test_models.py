import dataclasses
import sys

import pytest
import torch

from negrl.modeling import build_tiny_llama, count_parameters, load_policy, save_policy
from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft
from negrl.tokenizer import build_char_tokenizer


def test_char_tokenizer_round_trip(tmp_path, char_tokenizer):
    text = "Q: ((38-22)*5)*4\n38-22=16\nAnswer: 320"
    ids = char_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)  # one token per character
    assert char_tokenizer.decode(ids) == text
    assert (char_tokenizer.pad_token_id, char_tokenizer.bos_token_id, char_tokenizer.eos_token_id) == (0, 1, 2)
    char_tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert again.eos_token_id == 2 and again.pad_token_id == 0


@pytest.mark.parametrize("hidden, layers, lo, hi", [(32, 1, 5_000, 20_000), (64, 2, 80_000, 200_000)])
def test_tiny_llama_sizes(hidden, layers, lo, hi):
    model = build_tiny_llama(hidden_size=hidden, num_layers=layers, num_heads=2)
    assert lo <= count_parameters(model) <= hi
    assert model.config.eos_token_id == 2 and model.config.pad_token_id == 0


def test_save_load_and_generate(tmp_path, tiny_model, char_tokenizer):
    save_policy(tiny_model, char_tokenizer, tmp_path)
    model, tok = load_policy(tmp_path, device="cpu")
    enc = tok(["Q: 1+2\n", "Q: (10*3)-4\n"], return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 2 and enc["input_ids"].shape[1] < out.shape[1] <= enc["input_ids"].shape[1] + 5
    for (name, a), b in zip(tiny_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_policy_with_lora_and_missing_dir(tmp_path, tiny_model, char_tokenizer):
    from peft import LoraConfig

    save_policy(tiny_model, char_tokenizer, tmp_path)
    model, _ = load_policy(tmp_path, device="cpu", peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)
    with pytest.raises(FileNotFoundError):
        load_policy(str(tmp_path / "nope"))


def test_two_sft_steps_change_the_weights(tmp_path, tiny_model, char_tokenizer, arithmetic_task):
    train, _ = arithmetic_task.make_splits(32, 4)
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    args = cpu_safe_sft_config(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=16, learning_rate=1e-2, disable_tqdm=True
    )
    assert args.bf16 is False and args.gradient_checkpointing is False
    trainer = train_sft(tiny_model, char_tokenizer, gold_dataset(train), args)
    assert trainer.state.global_step == 2
    changed = [n for n, p in tiny_model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(changed) == len(before)


def test_sft_recipe_config_parses(monkeypatch):
    from tests.conftest import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "recipes"))
    monkeypatch.setattr(sys, "argv", ["sft.py", "--config", str(REPO_ROOT / "recipes/configs/base/arithmetic.yaml")])
    import sft

    cfg, args = sft.make_parser().parse_args_and_config()
    assert cfg.task == "arithmetic" and cfg.task_kwargs["digits"] == 2 and cfg.n_train == 3000
    assert args.num_train_epochs == 40 and args.bf16 is False and args.gradient_checkpointing is False
    assert dataclasses.asdict(cfg)


def test_tokenizer_has_every_task_character():
    tok = build_char_tokenizer()
    assert tok.unk_token_id not in tok("Q: ((1+2)*3)-4\n5>6 | Answer: A) 7.5", add_special_tokens=False)["input_ids"]
