"""Likra: score arithmetic, batched head log-likelihoods, named adapters, masking, checkpoints, reranking."""

from __future__ import annotations

import math

import pytest
import torch

from negrl.likra import (
    LikraConfig,
    answer_logprobs,
    attach_heads,
    power_of_two_steps,
    score,
    tokenize_pairs,
    train_head,
)
from negrl.likra.heads import list_checkpoints, load_head
from negrl.likra.rerank import rerank_metrics, top_candidates, verified_pairs
from negrl.likra.scoring import ChoiceLogprobs
from negrl.losses import choice_predictions, likra_head_weights, likra_scores
from negrl.records import Problem, Rollout, Verdict


# ---------------------------------------------------------------------------------------------------------------
# Pure score arithmetic (hand-computed)
# ---------------------------------------------------------------------------------------------------------------

LOGPS = {
    "pos": torch.tensor([-2.0, -3.0, -1.0]),
    "neg": torch.tensor([-1.0, -4.0, -0.5]),
    "base": torch.tensor([-2.5, -2.0, -3.0]),
}


@pytest.mark.parametrize(
    ("mode", "w", "expected"),
    [
        ("likra", 1.0, [-1.0, 1.0, -0.5]),  # pos - neg
        ("likra", 0.5, [-1.5, -1.0, -0.75]),  # pos - 0.5 neg
        ("sft", 1.0, [-2.0, -3.0, -1.0]),
        ("base_likra", 1.0, [-1.5, 2.0, -2.5]),  # base - neg
        ("pos_base", 1.0, [0.5, -1.0, 2.0]),  # pos - base
        ("base", 1.0, [-2.5, -2.0, -3.0]),
    ],
)
def test_likra_scores_modes(mode, w, expected):
    assert likra_scores(LOGPS, mode, w).tolist() == pytest.approx(expected)


def test_likra_scores_byte_normalisation():
    lengths = torch.tensor([2.0, 4.0, 1.0])
    assert likra_scores(LOGPS, "likra", 1.0, lengths).tolist() == pytest.approx([-0.5, 0.25, -0.5])
    # normalisation changes the winner: raw pos picks index 2, per-byte pos picks index 0 (-1.0 vs -0.75 vs -1.0)
    assert choice_predictions(likra_scores(LOGPS, "sft"), [3]).tolist() == [2]
    assert choice_predictions(likra_scores(LOGPS, "sft", lengths=torch.tensor([4.0, 4.0, 1.0])), [3]).tolist() == [0]


def test_likra_scores_errors():
    with pytest.raises(ValueError, match="unknown Likra mode"):
        likra_head_weights("nope")
    with pytest.raises(ValueError, match="needs head"):
        likra_scores({"pos": torch.zeros(2)}, "likra")


def test_choice_logprobs_accuracy():
    cl = ChoiceLogprobs(logps=LOGPS, byte_lengths=torch.tensor([1.0, 1.0, 1.0]), group_sizes=[2, 1], gold=[1, 0],
                        char_lengths=torch.tensor([1.0, 1.0, 1.0]))
    # likra: [-1, 1 | -0.5] → picks 1 and 0 → 2/2; sft: [-2, -3 | -1] → picks 0 → 1/2
    assert cl.accuracy("likra") == 1.0
    assert cl.accuracy("sft") == 0.5
    modes = {r["mode"] for r in cl.metrics(ws=(0.5, 1.0))}
    assert modes == {"likra", "sft", "base_likra", "pos_base", "base"}


def test_acc_norm_default_is_lm_evals_characters_without_the_delimiter(tiny_model, char_tokenizer):
    """lm-eval scores " " + option but divides by len(option); negrl's earlier bytes of " " + option flip this."""
    from negrl.likra.scoring import option_lengths, score_choices

    conts = [" no", " maybe"]
    assert option_lengths(conts).tolist() == [2.0, 5.0]  # characters, delimiter excluded (the default)
    assert option_lengths(conts, "bytes").tolist() == [3.0, 6.0]  # UTF-8 bytes of the scored continuation
    assert option_lengths([" café"]).tolist() == [4.0] and option_lengths([" café"], "bytes").tolist() == [6.0]
    assert option_lengths(["Answer: 3"], answer_prefix="").tolist() == [9.0]
    with pytest.raises(ValueError, match="unknown length_norm"):
        option_lengths(conts, "tokens")
    # log-likelihoods -3 (" no") and -7 (" maybe"), gold " maybe":
    #   chars: -3/2 = -1.5  < -7/5 = -1.4   → " maybe" (right)
    #   bytes: -3/3 = -1.0  > -7/6 ≈ -1.167 → " no"    (wrong)
    cl = ChoiceLogprobs(logps={"base": torch.tensor([-3.0, -7.0])}, byte_lengths=option_lengths(conts, "bytes"),
                        group_sizes=[2], gold=[1], char_lengths=option_lengths(conts))
    assert cl.accuracy("base", normalise=True) == 1.0
    assert cl.accuracy("base", normalise=True, length_norm="bytes") == 0.0
    assert cl.accuracy("base") == 0.0  # unnormalised: -3 > -7 picks " no"
    assert cl.metrics(modes=("base",))[0]["acc_norm"] == 1.0
    assert cl.metrics(modes=("base",), length_norm="bytes")[0]["acc_norm"] == 0.0
    old = ChoiceLogprobs(logps=cl.logps, byte_lengths=cl.byte_lengths, group_sizes=[2], gold=[1])  # an old cache
    with pytest.raises(ValueError, match="no char_lengths"):
        old.accuracy("base", normalise=True)
    # score_choices records both normalisers of the real options
    problem = Problem(problem_id="q", domain="choice", prompt="Q: ok?\nA:", answer="B", choices=["no", "maybe"])
    scored = score_choices(tiny_model, char_tokenizer, [problem], heads=("base",), show_progress=False)
    assert scored.char_lengths.tolist() == [2.0, 5.0] and scored.byte_lengths.tolist() == [3.0, 6.0]


# ---------------------------------------------------------------------------------------------------------------
# Heads on a tiny model
# ---------------------------------------------------------------------------------------------------------------


def _randomise_lora(model, head: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if f"lora_B.{head}." in name:
            p.data = torch.randn(p.shape, generator=g) * 0.5


def test_attach_heads_init_follows_the_config_seed():
    """The heads' LoRA init comes from ``LikraConfig.seed``, whatever the process drew before."""
    from negrl.modeling import build_tiny_llama

    def lora_a(draws: int, seed: int) -> torch.Tensor:
        model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
        torch.rand(draws)
        peft_model = attach_heads(model, LikraConfig(seed=seed))
        return next(p for n, p in peft_model.named_parameters() if "lora_A.neg" in n).detach().clone()

    assert torch.equal(lora_a(1, 7), lora_a(999, 7)) and not torch.equal(lora_a(1, 7), lora_a(1, 8))


def _manual_logp(model, tokenizer, prompt: str, answer: str) -> float:
    p = tokenizer(prompt)["input_ids"]
    a = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + a])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return sum(float(logp[len(p) + t - 1, a[t]]) for t in range(len(a)))


@pytest.fixture()
def two_heads(tiny_model):
    model = attach_heads(tiny_model, LikraConfig())
    _randomise_lora(model, "pos", 1)
    _randomise_lora(model, "neg", 2)
    model.eval()
    return model


def test_answer_logprobs_match_per_head_forward(two_heads, char_tokenizer):
    prompts = ["Q: 1+2\n", "Q: (7*3)-9\n", "Q: 5\n"]
    answers = ["Answer: 3", "7*3=21\n21-9=12\nAnswer: 12", "x"]
    got = answer_logprobs(two_heads, char_tokenizer, prompts, answers, heads=("pos", "neg", "base"), batch_size=2)
    with torch.no_grad():
        for head in ("pos", "neg"):
            two_heads.set_adapter(head)
            expect = [_manual_logp(two_heads, char_tokenizer, p, a) for p, a in zip(prompts, answers)]
            assert got[head].tolist() == pytest.approx(expect, abs=1e-4)
        with two_heads.disable_adapter():
            expect_base = [_manual_logp(two_heads, char_tokenizer, p, a) for p, a in zip(prompts, answers)]
    assert got["base"].tolist() == pytest.approx(expect_base, abs=1e-4)
    assert not torch.allclose(got["pos"], got["neg"])  # the heads differ
    # the public scorer: every mode and both normalisations from the same numbers
    cands = ["Answer: 3", "Answer: 4x"]
    lp = answer_logprobs(two_heads, char_tokenizer, [prompts[0]] * 2, cands)
    for mode, w in (("likra", 1.0), ("likra", 0.75), ("sft", 1.0), ("base_likra", 1.0), ("pos_base", 0.5)):
        weights = likra_head_weights(mode, w)
        raw = [sum(c * float(lp[h][i]) for h, c in weights.items()) for i in range(2)]
        assert score(two_heads, char_tokenizer, prompts[0], cands, mode, w)[0] == pytest.approx(raw, abs=1e-4)
        norm = [raw[0] / 9, raw[1] / 10]  # characters of "Answer: 3" and "Answer: 4x" (no delimiter)
        assert score(two_heads, char_tokenizer, [prompts[0]], [cands], mode, w, normalise=True)[0] == pytest.approx(
            norm, abs=1e-4
        )


def test_tokenize_pairs_answer_only_no_eos(char_tokenizer, tiny_model):
    """The collated labels are -100 on the prompt, the answer ids on the answer, and there is no EOS."""
    from trl import SFTTrainer

    from negrl.sft import cpu_safe_sft_config

    ds = tokenize_pairs(char_tokenizer, ["Q: 1+2\n", "Q: 3\n"], ["Answer: 3", "A: 3"])
    assert ds[0]["completion_mask"] == [0] * 7 + [1] * 9
    assert char_tokenizer.eos_token_id not in ds[0]["input_ids"]
    char_tokenizer.padding_side = "right"
    trainer = SFTTrainer(model=tiny_model, args=cpu_safe_sft_config(output_dir="/tmp/negrl_likra_mask", max_length=64),
                         train_dataset=ds, processing_class=char_tokenizer)
    char_tokenizer.padding_side = "left"
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    labels, ids = batch["labels"], batch["input_ids"]
    assert labels[0, :7].tolist() == [-100] * 7
    assert labels[0, 7:16].tolist() == char_tokenizer("Answer: 3", add_special_tokens=False)["input_ids"]
    assert labels[1, :5].tolist() == [-100] * 5 and labels[1, 5:9].tolist() == ids[1, 5:9].tolist()
    assert (labels[1, 9:] == -100).all()  # padding
    assert char_tokenizer.eos_token_id not in labels.tolist()[0]


def test_power_of_two_steps():
    assert power_of_two_steps(1) == [1]
    assert power_of_two_steps(8) == [1, 2, 4, 8]
    assert power_of_two_steps(10) == [1, 2, 4, 8, 10]
    assert power_of_two_steps(0) == []


def _lora_state(model, head):
    return {n: p.detach().clone() for n, p in model.named_parameters() if f".{head}." in n and "lora_" in n}


def test_train_heads_distinct_base_frozen_and_checkpoints(tiny_model, char_tokenizer, tmp_path):
    cfg = LikraConfig(batch_size=4, learning_rate=1e-2)
    model = attach_heads(tiny_model, cfg)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    pos0, neg0 = _lora_state(model, "pos"), _lora_state(model, "neg")
    assert pos0 and neg0 and set(pos0).isdisjoint(neg0)
    prompts = [f"Q: {i}+1\n" for i in range(20)]
    saved = train_head(model, char_tokenizer, "pos", prompts, [f"Answer: {i + 1}" for i in range(20)], cfg, tmp_path,
                       disable_tqdm=True, logging_steps=100)
    pos1, neg1 = _lora_state(model, "pos"), _lora_state(model, "neg")
    assert any(not torch.equal(pos0[n], pos1[n]) for n in pos0)  # pos trained
    assert all(torch.equal(neg0[n], neg1[n]) for n in neg0)  # neg untouched
    train_head(model, char_tokenizer, "neg", prompts, [f"Answer: {i + 2}" for i in range(20)], cfg, tmp_path,
               disable_tqdm=True, logging_steps=100)
    pos2, neg2 = _lora_state(model, "pos"), _lora_state(model, "neg")
    assert all(torch.equal(pos1[n], pos2[n]) for n in pos1)
    assert any(not torch.equal(neg1[n], neg2[n]) for n in neg1)
    for n, p in model.named_parameters():
        if "lora_" not in n:
            assert torch.equal(base_before[n], p) and not p.requires_grad or torch.equal(base_before[n], p)
    # 20 examples, batch 4 → 5 steps: checkpoints after 1, 2, 4 steps (4, 8, 16 examples) and the end (20)
    assert [p.parent.name for p in saved] == ["n4", "n8", "n16", "n20"]
    assert list(list_checkpoints(tmp_path, "neg")) == [4, 8, 16, 20]
    # loading the n4 checkpoint of pos changes the weights back to that state, the final one restores them
    load_head(model, saved[0], "pos")
    assert any(not torch.equal(pos2[n], p) for n, p in _lora_state(model, "pos").items())
    load_head(model, saved[-1], "pos")
    assert all(torch.allclose(pos2[n], p) for n, p in _lora_state(model, "pos").items())


# ---------------------------------------------------------------------------------------------------------------
# Reranking
# ---------------------------------------------------------------------------------------------------------------


def _rollouts():
    rs = [Rollout(rollout_id=f"p{q}#{k}", problem_id=f"p{q}", completion=f"c{q}{k}") for q in range(2) for k in range(3)]
    correct = [True, False, False, False, False, True]
    extracted = ["1", "2", "2", "5", "5", "6"]
    vs = [Verdict(rollout_id=r.rollout_id, correct=c, extracted=e) for r, c, e in zip(rs, correct, extracted)]
    return rs, vs


def test_top_candidates_picks_highest_score():
    rs, _ = _rollouts()
    from negrl.likra.rerank import group_candidates

    groups = group_candidates(rs)
    top = top_candidates(torch.tensor([0.1, 0.9, 0.3, -1.0, -2.0, -0.5]), groups)
    assert top == {"p0": 1, "p1": 5}


def test_rerank_metrics_by_hand():
    rs, vs = _rollouts()
    logps = {
        "pos": torch.tensor([-1.0, -2.0, -3.0, -5.0, -4.0, -6.0]),  # sft picks p0#0 (right), p1#1 (wrong)
        "neg": torch.tensor([-9.0, -1.0, -1.0, -1.0, -1.0, -9.0]),  # likra w=1 picks p0#0, p1#2 (right)
        "base": torch.tensor([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0]),
    }
    rows = {(r["method"], r.get("w"), r.get("norm")): r["acc"] for r in rerank_metrics(rs, vs, logps, ws=(1.0,))}
    assert rows[("oracle_pass@k", None, None)] == 1.0
    assert rows[("random", None, None)] == pytest.approx(1 / 3)
    assert rows[("majority", None, None)] == 0.0  # "2" wins p0 (wrong), "5" wins p1 (wrong)
    assert rows[("sft", 1.0, False)] == 0.5
    assert rows[("likra", 1.0, False)] == 1.0
    assert rows[("base_likra", 1.0, False)] == 1.0


def test_verified_pairs_skip_unverifiable():
    probs = [Problem(problem_id=f"p{q}", domain="arithmetic", prompt=f"Q{q}\n") for q in range(2)]
    rs, vs = _rollouts()
    vs[1].correct = None
    (pp, pa), (np_, na) = verified_pairs(probs, rs, vs)
    assert pa == ["c00", "c12"] and pp == ["Q0\n", "Q1\n"]
    assert na == ["c02", "c10", "c11"]
    assert not math.isnan(len(na))


# ---------------------------------------------------------------------------------------------------------------
# End to end (slow): the learning-curve recipe and the reranker on the trained tiny policy
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_likra_curve_recipe_end_to_end(trained_policy_dir, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("likra_curve", root / "recipes" / "likra_curve.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    out = tmp_path / "curve"
    recipe.main(["--config", str(root / "recipes/configs/likra/tiny_arithmetic_choice.yaml"), "--set", f"model={trained_policy_dir}",
          f"output_dir={out}", "n_train=32", "n_test=16", "task_knobs={min_steps: 1, max_steps: 2}",
          "heads.batch_size=8", "eval_batch_size=32"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["n"] for r in rows} == {0, 8, 16, 32}
    assert all(0.0 <= r["acc"] <= 1.0 for r in rows)
    assert (out / "learning_curve.png").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["experiment"]["n_train"] == 32


@pytest.mark.slow
def test_rerank_end_to_end(trained_policy_dir, tmp_path):
    from negrl.experiments.likra_rerank import RerankConfig, run_rerank

    cfg = RerankConfig(base_policy=str(trained_policy_dir), output_dir=str(tmp_path), task="arithmetic",
                       task_kwargs={"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99}, k=4, n_train=32,
                       n_test=16, heads=LikraConfig(batch_size=8, learning_rate=3e-3), ws=[1.0])
    rows = run_rerank(cfg)
    acc = {(r["method"], r.get("w"), r.get("norm")): r.get("acc") for r in rows}
    assert 0.0 <= acc[("likra", 1.0, False)] <= acc[("oracle_pass@k", None, None)] <= 1.0
    assert rows[-1]["train_pos"] > 0 and rows[-1]["train_neg"] > 0


def test_learning_curve_plot_is_a_png(tmp_path):
    from negrl.experiments.likra_curve import plot_curve

    rows = [{"mode": "base", "n": 0, "w": None, "acc_norm": 0.5}]
    rows += [{"mode": m, "n": n, "w": 1.0, "acc_norm": 0.5 + n / 1000} for m in ("sft", "likra", "base_likra")
             for n in (64, 128)]
    out = plot_curve(rows, tmp_path / "deep" / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
