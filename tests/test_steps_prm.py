"""PRM: the loss by hand, step-end positions, a few LoRA training steps, scoring, λ, save/load round-trip."""

from __future__ import annotations

import math

import pytest
import torch

from negrl.losses import prm_step_loss
from negrl.records import Problem, Rollout, Step, StepLabels
from negrl.steps.prm import PRMConfig, PRMScorer, collate, encode_steps, prm_rows, tokenize_row, train_prm


def test_prm_step_loss_hand_worked():
    # margins [2, 0]: -log σ(2) = log(1 + e^-2) = 0.126928; soft target 0.5 at margin 0: log 2 = 0.693147
    loss = prm_step_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5]))
    assert loss.item() == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2, abs=1e-6)
    loss = prm_step_loss(torch.tensor([0.0]), torch.tensor([3.0]), torch.tensor([0.0]))  # margin -3, target 0
    assert loss.item() == pytest.approx(math.log1p(math.exp(-3)), abs=1e-6)


def test_step_end_positions_and_rows(char_tokenizer):
    ids, pos = encode_steps(char_tokenizer, "Q: 1+2\n", ["1+2=3\n", "Answer: 3"], max_length=64)
    assert len(ids) == 7 + 6 + 9 and pos == [12, 21]  # last char of each step
    assert encode_steps(char_tokenizer, "Q: 1+2\n", ["1+2=3\n", "Answer: 3"], max_length=15)[1] == [12, -1]
    row = tokenize_row({"prompt": "Q\n", "completions": ["a\n", "b"], "labels": [True, None]}, char_tokenizer, 64)
    assert [i for i, t in enumerate(row["step_targets"]) if t != -100.0] == [3] and row["step_targets"][3] == 1.0
    batch = collate([row, tokenize_row({"prompt": "Q\n", "completions": ["a"], "labels": [0.25]}, char_tokenizer, 64)],
                    char_tokenizer.pad_token_id)
    assert batch["input_ids"].shape == (2, 5) and batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert batch["step_targets"][1, 2].item() == 0.25
    with pytest.raises(ValueError, match="2 completions"):
        tokenize_row({"prompt": "Q", "completions": ["a", "b"], "labels": [True]}, char_tokenizer, 64)


def _rows(n: int = 64):
    # An easy rule (readable from the step's last token): the answer line is wrong, the other steps are right.
    rows = []
    for i in range(n):
        steps = [f"{i % 5}+{i % 3}={(i % 5) + (i % 3)}\n", f"x={i % 9}\n", f"Answer: {i % 8}"]
        rows.append({"prompt": f"Q: {i}\n", "completions": steps, "labels": [True, True, False]})
    return rows


def test_prm_trains_scores_and_round_trips(tiny_model, char_tokenizer, tmp_path):
    from peft import LoraConfig

    rows = _rows()
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    args = PRMConfig(output_dir=str(tmp_path / "trainer"), learning_rate=3e-2, per_device_train_batch_size=16,
                      max_steps=12, logging_steps=2, disable_tqdm=True, seed=0)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
                      task_type="CAUSAL_LM")
    trainer = train_prm(tiny_model, char_tokenizer, rows, args, peft_config=lora)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    changed = [n for n, p in trainer.model.named_parameters() if p.requires_grad and "lora_B" in n
               and not torch.equal(p, torch.zeros_like(p))]
    assert changed  # LoRA weights moved
    assert all(torch.equal(p, before[n]) for n, p in tiny_model.named_parameters() if n in before)  # base frozen

    scorer = PRMScorer.from_trainer(trainer)
    probs = scorer.score([r["prompt"] for r in rows], [r["completions"] for r in rows])
    flat = [(p, lab) for pr, r in zip(probs, rows) for p, lab in zip(pr, r["labels"])]
    assert all(0.0 <= p <= 1.0 for p, _ in flat)
    pos = sum(p for p, lab in flat if lab) / sum(1 for _, lab in flat if lab)
    neg = sum(p for p, lab in flat if not lab) / sum(1 for _, lab in flat if not lab)
    assert pos > neg  # it learned something about the rule

    problem = Problem(problem_id="arith:x", domain="arithmetic", prompt=rows[7]["prompt"], answer="0")
    rollout = Rollout(rollout_id="arith:x#0", problem_id="arith:x", completion="".join(rows[7]["completions"]))
    (lab,) = scorer.label([problem], [rollout])
    assert lab.source == "prm" and lab.values == pytest.approx(probs[7])
    assert lab.labels == [p >= 0.5 for p in probs[7]]
    (strict,) = PRMScorer.from_trainer(trainer, threshold=1.0).label([problem], [rollout])
    assert strict.labels == [False, False, False] and strict.first_error == 0

    scorer.save_pretrained(tmp_path / "prm")
    loaded = PRMScorer.from_pretrained(tmp_path / "prm", device="cpu")
    assert loaded.threshold == 0.5 and loaded.label_ids == scorer.label_ids
    assert loaded.score([rows[7]["prompt"]], [rows[7]["completions"]])[0] == pytest.approx(probs[7], abs=1e-5)


def test_prm_rows_from_step_labels():
    p = Problem(problem_id="arith:1", domain="arithmetic", prompt="Q: 1\n", answer="1")
    lab = StepLabels(rollout_id="arith:1#3", steps=[Step("a\n", 0, 2), Step("b", 2, 3)], values=[0.5, None],
                     labels=[True, False], first_error=1, source="mc")
    assert prm_rows([p], [lab]) == [{"prompt": "Q: 1\n", "completions": ["a\n", "b"], "labels": [True, False]}]
    assert prm_rows([p], [lab], soft=True)[0]["labels"] == [0.5, 0.0]
    with pytest.raises(ValueError, match="known problem"):
        prm_rows([], [lab])


def test_prm_adapter_init_follows_args_seed(char_tokenizer, tmp_path):
    """The PRM's LoRA init comes from ``args.seed``, whatever the process drew before (no training needed)."""
    from peft import LoraConfig

    from negrl.modeling import build_tiny_llama
    from negrl.steps.prm import PRMTrainer

    def lora_a(draws: int, seed: int) -> torch.Tensor:
        model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
        torch.rand(draws)
        args = PRMConfig(output_dir=str(tmp_path), disable_tqdm=True, seed=seed)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        trainer = PRMTrainer(model=model, args=args, train_dataset=_rows(), processing_class=char_tokenizer,
                             peft_config=lora)
        return next(p for n, p in trainer.model.named_parameters() if "lora_A" in n).detach().clone()

    assert torch.equal(lora_a(1, 5), lora_a(999, 5)) and not torch.equal(lora_a(1, 5), lora_a(1, 6))
