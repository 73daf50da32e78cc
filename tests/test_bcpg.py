"""BCPG-NSA data stage (group filter, baseline, behaviour log-probs, mined steps) and trainer (LoRA, a few steps)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from negrl.builders.bcpg import (
    BCPGDataConfig,
    BCPGSample,
    bcpg_dataset,
    build_bcpg_samples,
    mine_correct_steps,
    mining_stats,
)
from negrl.experiments.bcpg import ANNOTATORS
from negrl.io import read_stage
from negrl.records import Rollout, StepLabels, Verdict
from negrl.steps.segment import segment
from negrl.trainers.weighted import sequence_logps


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def groups(arithmetic_task):
    """Three problems: a mixed group (2 right, 1 wrong, 1 unverifiable), an all-right and an all-wrong group."""
    a, b, c = arithmetic_task.generate_problems(3, seed=1)
    wrong = a.solution.rsplit("Answer: ", 1)[0] + f"Answer: {int(a.answer) + 1}"
    spec = [(a, a.solution, True), (a, a.solution, True), (a, wrong, False), (a, "garbage", None),
            (b, b.solution, True), (b, b.solution, True), (c, "1", False), (c, "2", False)]
    rollouts, verdicts = [], []
    for k, (p, text, ok) in enumerate(spec):
        rollouts.append(Rollout(rollout_id=f"{p.problem_id}#{k}", problem_id=p.problem_id, completion=text))
        verdicts.append(Verdict(rollout_id=f"{p.problem_id}#{k}", correct=ok))
    return [a, b, c], rollouts, verdicts


def test_group_filter_baseline_and_behaviour_logps(groups, tiny_model, char_tokenizer, tmp_path):
    problems, rollouts, verdicts = groups
    samples = build_bcpg_samples(problems, rollouts, verdicts, tiny_model, char_tokenizer, out_dir=tmp_path / "s")
    assert {s.problem_id for s in samples} == {problems[0].problem_id}  # all-right / all-wrong groups dropped
    assert len(samples) == 3  # the unverifiable sample is neither a positive nor a negative
    assert sorted(s.advantage for s in samples) == pytest.approx([-2 / 3, 1 / 3, 1 / 3])
    assert all(s.group_size == 3 and s.reward in (0.0, 1.0) for s in samples)
    rows = [bcpg_dataset([s], char_tokenizer, beta=1.0)[0] for s in samples]
    expected = sequence_logps(tiny_model, rows, char_tokenizer.pad_token_id)
    assert [s.ref_logp for s in samples] == pytest.approx(expected, abs=1e-5)
    assert all(s.ref_logp < 0 and s.n_tokens == len(r["input_ids"]) for s, r in zip(samples, rows))
    # The stage is complete on disk and reused as is.
    assert [s.rollout_id for s in read_stage(tmp_path / "s", BCPGSample)] == [s.rollout_id for s in samples]


def test_mined_step_weights_line_up_with_step_offsets(groups, tiny_model, char_tokenizer, arithmetic_task):
    problems, rollouts, verdicts = groups
    samples = build_bcpg_samples(problems, rollouts, verdicts, tiny_model, char_tokenizer, BCPGDataConfig())
    neg = next(s for s in samples if s.is_negative)
    steps = segment(neg.completion)
    labels = [True] * (len(steps) - 1) + [False]  # every step right but the answer line
    lab = StepLabels(rollout_id=neg.rollout_id, steps=steps, values=[None] * len(steps), labels=labels,
                     first_error=len(steps) - 1, source="oracle")
    pos_lab = StepLabels(rollout_id=samples[0].rollout_id if samples[0] is not neg else samples[1].rollout_id,
                         steps=steps, values=[None] * len(steps), labels=[True] * len(steps), first_error=None,
                         source="oracle")
    mined = mine_correct_steps(samples, [lab, pos_lab], annotator="oracle")
    assert all(not s.mined_spans for s in mined if not s.is_negative)  # positives never mine
    neg_m = next(s for s in mined if s.is_negative)
    assert neg_m.mined_spans == [[st.start, st.end] for st in steps[:-1]]
    ds = bcpg_dataset(mined, char_tokenizer, beta=-0.5)
    row = ds[[s.rollout_id for s in mined].index(neg.rollout_id)]
    beta_ids = [t for t, w in zip(row["input_ids"], row["token_weights"]) if w == -0.5]
    correct_text = "".join(st.text for st in steps[:-1])
    assert beta_ids == char_tokenizer(correct_text, add_special_tokens=False)["input_ids"]
    assert row["advantage"] == pytest.approx(-2 / 3)
    # Stats against the exact checker: the mined lines are exactly the truly correct ones.
    stats = mining_stats(mined, problems, char_tokenizer)
    assert stats["mined_tokens"] == len(correct_text) and stats["precision"] == 1.0 and stats["recall"] == 1.0
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        bcpg_dataset(mined, char_tokenizer, beta=2.0)
    with pytest.raises(ValueError, match="tokens now"):
        bcpg_dataset(mined, char_tokenizer, beta=0.5, max_length=8)


def test_trainer_runs_with_lora_and_changes_adapter(groups, tiny_model, char_tokenizer, tmp_path):
    from peft import LoraConfig

    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer

    problems, rollouts, verdicts = groups
    samples = build_bcpg_samples(problems, rollouts, verdicts, tiny_model, char_tokenizer)
    ds = bcpg_dataset(samples, char_tokenizer, beta=0.5)
    args = BCPGNSAConfig(output_dir=str(tmp_path), per_device_train_batch_size=3, max_steps=4, learning_rate=5e-2,
                         logging_steps=1, disable_tqdm=True, seed=0, tau=1e-3)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")
    trainer = BCPGNSATrainer(tiny_model, args, train_dataset=ds, processing_class=char_tokenizer, peft_config=lora)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert all(not p.requires_grad for n, p in after.items() if "lora_" not in n)  # only the adapter trains
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and all(math.isfinite(h["loss"]) for h in logs)
    assert "kl_penalty" in logs[0] and logs[0]["log_ratio"] == pytest.approx(0.0, abs=1e-4)  # step 1: π = π_ref
    # The policy-gradient moves log-probs of positives up relative to negatives.
    rows = [ds[i] for i in range(len(ds))]
    new = sequence_logps(trainer.model, rows, char_tokenizer.pad_token_id)
    gain = [n - s.ref_logp for n, s in zip(new, samples)]
    pos_gain = min(g for g, s in zip(gain, samples) if not s.is_negative)
    neg_gain = max(g for g, s in zip(gain, samples) if s.is_negative)
    assert pos_gain > neg_gain


def test_annotator_labels_are_keyed_by_their_settings(groups, tmp_path, monkeypatch):
    """A changed source setting labels afresh (no stale reuse); the same settings reuse the stage; others refuse."""
    import dataclasses

    import negrl.experiments.bcpg as bcpg
    import negrl.steps.sources as sources
    from negrl.io import StageError

    problems, rollouts, verdicts = groups
    negatives = [r for r, v in zip(rollouts, verdicts) if v.correct is False]
    calls: list[float] = []

    def fake_prm(problems, rollouts, verdicts, settings, model, tokenizer, mc_dir):  # exact labels, marked
        from negrl.steps.judge import OracleJudge

        calls.append(settings.prm_threshold)
        return [dataclasses.replace(lab, source="prm", detail=str(settings.prm_threshold))
                for lab in OracleJudge().label(problems, rollouts)]

    monkeypatch.setitem(sources.LABELERS, "prm", fake_prm)

    def annotate(threshold):
        cfg = bcpg.BCPGRunConfig(annotator="prm", prm_model="some/prm", prm_threshold=threshold)
        return bcpg.annotate(cfg, problems, negatives, verdicts, None, None, 0, tmp_path)

    first = annotate(0.5)
    assert annotate(0.5) == first and calls == [0.5]  # same settings: the stage is reused
    assert [lab.detail for lab in annotate(0.8)] == ["0.8"] * len(negatives) and calls == [0.5, 0.8]
    assert len(list(tmp_path.glob("labels-prm-*/manifest.json"))) == 2
    with pytest.raises(ValueError, match="unknown label source"):
        sources.label_source("nope", problems, negatives, verdicts, sources.LabelSettings())
    with pytest.raises(ValueError, match="unknown annotator"):
        bcpg.annotate(bcpg.BCPGRunConfig(annotator="nope"), problems, negatives, verdicts, None, None, 0, tmp_path)
    # sampling stages are keyed too: another problem set in the same directory is refused, never reused
    monkeypatch.setattr(bcpg, "generate_rollouts", lambda probs, *a: [r for r in rollouts if r.problem_id in
                                                                      {p.problem_id for p in probs}])
    cfg = bcpg.BCPGRunConfig()
    got, _ = bcpg.sample_and_verify(problems, None, None, cfg, 0, tmp_path / "round")
    assert got == rollouts and bcpg.sample_and_verify(problems, None, None, cfg, 0, tmp_path / "round")[0] == got
    with pytest.raises(StageError, match="n_problems"):
        bcpg.sample_and_verify(problems[:2], None, None, cfg, 0, tmp_path / "round")


def test_config_validation(tmp_path):
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig

    cfg = BCPGNSAConfig(output_dir=str(tmp_path))
    assert cfg.tau == 1e-3 and cfg.normalization == "sequence" and cfg.gradient_checkpointing is False
    with pytest.raises(ValueError, match="normalization"):
        BCPGNSAConfig(output_dir=str(tmp_path), normalization="mean")


@pytest.mark.parametrize("name", ["tiny_arithmetic.yaml", "r1_distill_qwen_1.5b_math.yaml"])
def test_recipe_configs_parse(name, tmp_path):
    import sys

    sys.path.insert(0, str(REPO_ROOT / "recipes"))
    from train_bcpg_nsa import make_parser

    cfg, args = make_parser().parse_args_and_config(
        ["--config", str(REPO_ROOT / "recipes" / "configs" / "bcpg" / name), "--output_dir", str(tmp_path)]
    )
    assert -1.0 <= cfg.beta <= 1.0 and args.tau == 1e-3 and args.normalization == "sequence"
    assert cfg.annotator in ANNOTATORS and cfg.num_samples > 1


@pytest.mark.slow
def test_round_end_to_end_and_iterate(trained_policy_dir, tmp_path):
    """Two rounds from the 15-s fixture policy with the oracle annotator: stages, merged policy, metrics."""
    import json

    from negrl.experiments.bcpg import BCPGRunConfig, run_rounds
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig

    cfg = BCPGRunConfig(policy=str(trained_policy_dir), task_kwargs={"min_steps": 1, "max_steps": 2, "digits": 1,
                        "max_value": 99}, n_problems=48, num_samples=4, annotator="oracle", beta=0.5,
                        eval_problems=32, eval_samples=1, rounds=2, lora_r=4, lora_alpha=8)
    args = BCPGNSAConfig(output_dir=str(tmp_path), per_device_train_batch_size=32, num_train_epochs=1,
                         learning_rate=1e-3, disable_tqdm=True, max_length=128)
    history = run_rounds(cfg, args, tmp_path)
    assert [m["round"] for m in history] == [0, 1]
    r0 = tmp_path / "round-00"
    for stage in ("rollouts", "verdicts", "samples"):
        assert (r0 / stage / "manifest.json").exists()
    assert len(list(r0.glob("labels-oracle-*/manifest.json"))) == 1
    assert (r0 / "config.yaml").exists() and (r0 / "policy" / "config.json").exists()
    assert history[0]["rows"] > 0 and 0.0 <= history[0]["held_out"]["greedy"] <= 1.0
    assert history[0]["mining"]["precision"] == 1.0 or history[0]["mining"]["mined_tokens"] == 0
    assert json.loads((tmp_path / "rounds.json").read_text())[1]["policy"].endswith("round-01/policy")


@pytest.mark.slow
def test_pipeline_variants_bcpg_and_nsa(trained_policy_dir, tmp_path):
    """``bcpg`` / ``bcpg_nsa`` are registered pipeline methods; variants share one seed's data and report mining."""
    from negrl.experiments.bcpg import mining_table
    from negrl.experiments.compare import results_table, run_variants
    from negrl.experiments.methods import METHODS
    from negrl.experiments.pipeline import PipelineConfig

    assert {"bcpg", "bcpg_nsa"} <= set(METHODS)
    cfg = PipelineConfig(base_policy=str(trained_policy_dir), output_dir=str(tmp_path), n_prompts=32, n_test=16,
                         samples_per_prompt=4, mc={"k": 2, "early_stop": True}, eval_samples=1, show_progress=False,
                         task_kwargs={"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99})
    train = {"num_train_epochs": 1, "per_device_train_batch_size": 16, "lora": {"r": 4, "lora_alpha": 8}}
    variants = {"bcpg": {"method": "bcpg", **train},
                "nsa_oracle": {"method": "bcpg_nsa", "beta": -0.5, "annotator": "oracle", **train},
                "nsa_cons": {"method": "bcpg_nsa", "annotator": "consensus", "consensus_sources": ["mc", "oracle"],
                             **train}}
    runs = run_variants(cfg, variants, seeds=[0])
    res = runs[0]["results"]
    assert set(res) == set(variants) and all(0.0 <= r["greedy"] <= 1.0 for r in res.values())
    assert res["bcpg"]["bcpg"]["beta"] == 1.0 and res["nsa_oracle"]["bcpg"]["beta"] == -0.5
    oracle = res["nsa_oracle"]["bcpg"]["mining"]
    assert oracle["mined_tokens"] == 0 or oracle["precision"] == 1.0  # the oracle mines only truly correct steps
    assert res["nsa_cons"]["bcpg"]["mining"]["mined_tokens"] <= oracle["mined_tokens"]  # AND never mines more
    assert "nsa_oracle" in mining_table(runs) and "bcpg" in results_table(runs)


@pytest.mark.parametrize("name", ["experiment_arithmetic.yaml"])
def test_experiment_configs_parse(name):
    import yaml

    from negrl.experiments.bcpg import TaskPRMConfig
    from negrl.experiments.methods import METHODS
    from negrl.experiments.pipeline import load_pipeline_config

    raw = yaml.safe_load((REPO_ROOT / "recipes" / "configs" / "bcpg" / name).read_text())
    variants, seeds, prm = raw.pop("variants"), raw.pop("seeds"), raw.pop("prm")
    cfg = load_pipeline_config(None, **raw)
    assert len(seeds) >= 3 and cfg.samples_per_prompt > 1 and TaskPRMConfig(**prm).steps > 0
    assert {v["method"] for v in variants.values()} <= set(METHODS)
    assert {v.get("annotator", "mc") for v in variants.values()} <= set(ANNOTATORS)
