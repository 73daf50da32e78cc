"""Scarce positives: a method the data cannot feed is skipped with its reason, and the comparison still tabulates.

No model is loaded: the data stages are replaced by scripted data, evaluation by a stub, and (on the mixed data)
``load_base`` by a sentinel that proves the method got as far as training, with exactly the builders' rows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from negrl.builders import AWRRowConfig, PairConfig, awr_rows, outcome_dpo_pairs, rft_rows, step_dpo_pairs
from negrl.experiments import compare, methods
from negrl.experiments.compare import results_table, run_pipeline
from negrl.experiments.demo import format_report
from negrl.experiments.methods import METHOD_DATA, preflight
from negrl.experiments.pipeline import PipelineConfig, PipelineData
from negrl.records import Step, StepLabels, Verdict
from tests.experiments.test_ablation import fake_data


ALL_METHODS = ["base", "sft_more", "rft", "outcome_dpo", "step_dpo", "step_dpo_prefix", "awr", "bcpg", "bcpg_nsa"]


def _labels(rid: str, prefix_value: float) -> StepLabels:
    # A Monte-Carlo label of a one-step wrong rollout: the step fails every continuation (value 0).
    return StepLabels(rollout_id=rid, steps=[Step(text=rid[-2:] + "\n", start=0, end=3)], values=[0.0],
                      labels=[False], first_error=0, source="mc", prefix_value=prefix_value)


def all_wrong_data() -> PipelineData:
    """Every sample wrong (SmolLM2 on GSM8K): Monte-Carlo values, and so every advantage, are 0."""
    d = fake_data()
    verdicts = [Verdict(rollout_id=v.rollout_id, correct=False) for v in d.verdicts]
    labels = [_labels(r.rollout_id, 0.0) for r in d.rollouts]
    return dataclasses.replace(d, verdicts=verdicts, step_labels=labels)


def mixed_data() -> PipelineData:
    """The ablation fixture with gold solutions and a prompt value above the pit (a negative advantage)."""
    d = fake_data()
    problems = [dataclasses.replace(p, solution="1\n") for p in d.problems]
    labels = [dataclasses.replace(sl, prefix_value=0.5) for sl in d.step_labels]
    return dataclasses.replace(d, problems=problems, step_labels=labels)


def _cfg(tmp_path: Path) -> PipelineConfig:
    (tmp_path / "base").mkdir(exist_ok=True)
    return PipelineConfig(base_policy=str(tmp_path / "base"), output_dir=str(tmp_path / "run"), methods=ALL_METHODS,
                          show_progress=False)


def _fake_eval(cfg, name, model_dir, test):
    return {"method": name, "seed": cfg.seed, "greedy": 0.25, "sampled": 0.5, "n": len(test), "model_dir": model_dir}


def _patch_stages(monkeypatch: pytest.MonkeyPatch, data: PipelineData) -> None:
    monkeypatch.setattr(compare, "prepare_data", lambda cfg: data)
    monkeypatch.setattr(compare, "evaluate_method", _fake_eval)


def test_preflight_all_wrong_feeds_only_base(tmp_path: Path) -> None:
    report = preflight(_cfg(tmp_path), all_wrong_data())
    assert report.samples == {"correct": 0, "wrong": 48, "unjudged": 0}
    assert report.prompts == {"all_wrong": 6, "all_correct": 0, "mixed": 0, "unjudged": 0}
    assert report.pits == 48
    assert report.fed == ["base"]
    assert report.methods["rft"]["dropped"] == {"wrong": 48}
    assert report.methods["step_dpo"]["dropped"] == {"no_chosen": 48}
    assert "non-zero advantage" in report.methods["awr"]["skip"]
    assert report.methods["awr"]["kept"] == 48  # rows built, but nothing to weight them by
    assert "both a correct and a wrong" in report.methods["bcpg_nsa"]["skip"]
    text = report.format()
    assert "rft: skipped: no verified-correct samples" in text and "base: ok (trains on nothing)" in text


def test_all_wrong_comparison_skips_every_method_and_writes_a_row_each(tmp_path, monkeypatch, capsys) -> None:
    _patch_stages(monkeypatch, all_wrong_data())

    def no_model(ctx):
        raise AssertionError("a skipped method must not load the base")

    monkeypatch.setattr(methods, "load_base", no_model)
    cfg = _cfg(tmp_path)
    out = run_pipeline(cfg)
    assert list(out["results"]) == ALL_METHODS
    assert "skipped" not in out["results"]["base"]
    for name in ALL_METHODS[1:]:
        res = out["results"][name]
        assert res["skipped"] and res["build"]["kept"] >= 0, name
        assert not (cfg.run_dir / "models" / name).exists()  # no model trained
    assert out["results"]["rft"]["build"] == {"kept": 0, "dropped": {"wrong": 48}}
    assert "preflight: samples" in capsys.readouterr().out
    table = results_table({0: out})
    body = table.splitlines()[2:]
    assert [line.split("|")[1].strip() for line in body] == ALL_METHODS
    assert "| rft | 0 | skipped: no verified-correct samples (0 of 48 rollouts) | - |" in table
    assert "| base | 0 | 25.0 ± 0.0 | 50.0 ± 0.0 |" in table
    base_metrics = {"task": "arithmetic", "parameters": 1, "train_seconds": 0.0}
    report = format_report(base_metrics, out)  # the demo's table reads the same results
    assert "| awr | skipped: no non-zero advantage in its 48 rows" in report


def test_results_table_names_a_seed_where_a_method_was_skipped() -> None:
    runs = {0: {"results": {"rft": {"seed": 0, "greedy": 0.5, "sampled": 0.5, "train": {"rows": 3}}}},
            1: {"results": {"rft": {"seed": 1, "skipped": "no verified-correct samples", "build": {"kept": 0}}}}}
    assert "| rft | 0 | 50.0 ± 0.0 | 50.0 ± 0.0 | 50.0; seed 1 skipped: no verified-correct samples | 3 |" in \
        results_table(runs)


class _Reached(Exception):
    pass


def test_mixed_data_trains_every_method_on_the_builders_rows(tmp_path, monkeypatch) -> None:
    data = mixed_data()
    cfg = _cfg(tmp_path)
    report = preflight(cfg, data)
    assert report.fed == ALL_METHODS and report.prompts["mixed"] == 6

    def reached(ctx):
        raise _Reached(ctx.output_dir.name)

    monkeypatch.setattr(methods, "load_base", reached)
    _patch_stages(monkeypatch, data)
    trained = []
    for name in ALL_METHODS[1:]:  # each method gets to loading the base: it was not skipped
        with pytest.raises(_Reached):
            compare.run_method(cfg, name, data)
        trained.append(name)
    assert trained == ALL_METHODS[1:]

    # The rows written (and trained on) are exactly the builders' own, as before the skip logic.
    def dumped(name: str) -> list[dict]:
        return [json.loads(x) for x in (cfg.run_dir / "data" / f"{name}.jsonl").read_text().splitlines()]

    prompt = data.prompt_fn(False)
    expected = {
        "rft": rft_rows(data.problems, data.rollouts, data.verdicts, prompt_fn=prompt),
        "outcome_dpo": outcome_dpo_pairs(data.problems, data.rollouts, data.verdicts, PairConfig(seed=0), prompt),
        "step_dpo": step_dpo_pairs(data.problems, data.rollouts, data.verdicts, data.step_labels,
                                   PairConfig(seed=0, format="paper"), prompt),
        "awr": awr_rows(data.problems, data.rollouts, data.verdicts, data.step_labels, AWRRowConfig(), prompt),
    }
    for name, rows in expected.items():
        assert len(rows) > 0 and dumped(name) == rows.to_list(), name
    # rft_neg is the one method that all-wrong data feeds (test_rft_neg_trains_on_the_negatives_of_all_wrong_prompts)
    assert set(METHOD_DATA) == set(ALL_METHODS[1:]) | {"rft_neg"}


def test_rft_neg_trains_on_the_negatives_of_all_wrong_prompts(tmp_path: Path) -> None:
    # Where every sample is wrong RFT has nothing; RFT + bounded negatives still gets the critical steps.
    report = preflight(_cfg(tmp_path), all_wrong_data(), [("rft_neg", "rft_neg", {})])
    assert report.fed == ["rft_neg"] and report.methods["rft_neg"]["kept"] > 0
    rows = METHOD_DATA["rft_neg"](methods.MethodContext(_cfg(tmp_path), all_wrong_data(), {}, tmp_path / "m", 0)).rows
    assert rows is not None and not any(rows["correct"]) and all(s[0][2] == -1.0 for s in rows["spans"])
