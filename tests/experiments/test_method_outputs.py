"""What a finished pipeline method leaves on disk: the merged policy every stage loads, plus the LoRA adapter."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from negrl.lora import lora_config
from negrl.modeling import load_policy, save_policy
from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft


def test_finish_saves_adapter_next_to_merged_policy(tmp_path, tiny_model, char_tokenizer, arithmetic_task):
    from negrl.experiments.methods import finish

    base_dir = tmp_path / "base"
    save_policy(tiny_model, char_tokenizer, base_dir)
    model, tok = load_policy(base_dir, device="cpu", peft_config=lora_config(r=4, target_modules=["q_proj", "v_proj"]))
    train, _ = arithmetic_task.make_splits(32, 4)
    args = cpu_safe_sft_config(output_dir=str(tmp_path / "trainer"), max_steps=2, per_device_train_batch_size=16,
                               learning_rate=5e-2, disable_tqdm=True, report_to=[])
    trainer = train_sft(model, tok, gold_dataset(train), args)
    out = tmp_path / "method"
    ctx = SimpleNamespace(output_dir=out, options={"learning_rate": 5e-2})  # finish reads only these two fields
    assert finish(ctx, trainer, tok, gold_dataset(train), None) == str(out)

    assert json.loads((out / "done.json").read_text())["steps"] == 2
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "adapter" / "adapter_model.safetensors").exists()
    merged, _ = load_policy(out, device="cpu")
    assert not any("lora" in n for n, _ in merged.named_parameters())  # the main directory stays a plain model
    adapted, _ = load_policy(base_dir, device="cpu", adapter=out / "adapter")
    plain, _ = load_policy(base_dir, device="cpu")
    ids = tok(["Q: 1+2\n"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want, got, before = merged(ids).logits, adapted(ids).logits, plain(ids).logits
    assert not torch.allclose(want, before)  # the adapter was trained: it changes the base's outputs
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)  # base + saved adapter == the merged policy


def test_eval_file_keeps_scored_completions(tmp_path, monkeypatch, tiny_model, char_tokenizer, arithmetic_task):
    """``eval/<name>.json`` holds each completion and its verdict; the returned result and its reuse are unchanged."""
    import negrl.modeling
    from negrl.experiments.compare import evaluate_method
    from negrl.experiments.pipeline import PipelineConfig

    problems = arithmetic_task.generate_problems(3, seed=2)
    cfg = PipelineConfig(output_dir=str(tmp_path / "run"), eval_samples=2, temperature=0.7, max_new_tokens=4,
                         batch_size=8)
    monkeypatch.setattr(negrl.modeling, "load_policy", lambda path: (tiny_model, char_tokenizer))
    fresh = evaluate_method(cfg, "m", "unused", problems)
    stored = json.loads((cfg.run_dir / "eval" / "m.json").read_text())
    rows = stored.pop("completions")
    assert stored == fresh and "completions" not in fresh
    assert len(rows) == 3 * (1 + 2) and {r["problem_id"] for r in rows} == {p.problem_id for p in problems}
    greedy = [r for r in rows if r["temperature"] == 0.0]
    assert len(greedy) == 3 and sum(r["correct"] is True for r in greedy) == round(fresh["greedy"] * fresh["n"])
    assert all(isinstance(r["completion"], str) and r["correct"] in (True, False, None) for r in rows)
    assert evaluate_method(cfg, "m", "unused", problems) == fresh  # reused as before, without the completions
