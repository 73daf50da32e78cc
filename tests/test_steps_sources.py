"""The one step-label dispatcher: sources, consensus, settings-keyed caching, clear errors."""

from __future__ import annotations

import dataclasses

import pytest

import negrl.steps.sources as sources
from negrl.records import Problem, Rollout, StepLabels
from negrl.steps.judge import OracleJudge
from negrl.steps.sources import LabelSettings, label_steps, source_settings, stage_name


P = Problem(problem_id="p", domain="arithmetic", prompt="Q: (3+4)*2\n", answer="14",
            meta={"operands": [3, 4, 2], "ops": ["+", "*"], "values": [7, 14]})
R = [Rollout(rollout_id="p#0", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15"),
     Rollout(rollout_id="p#1", problem_id="p", completion="3+4=8\n8*2=16\nAnswer: 16")]


def test_oracle_and_consensus_with_precomputed_labels(tmp_path):
    oracle = label_steps("oracle", [P], R, None, LabelSettings(), cache_dir=tmp_path)
    assert [lab.first_error for lab in oracle] == [1, 0]
    assert len(list(tmp_path.glob("labels-oracle-*/manifest.json"))) == 1
    judge = [StepLabels(rollout_id=lab.rollout_id, steps=lab.steps, values=[None] * 3, labels=[True, True, None],
                        first_error=None, source="judge") for lab in oracle]
    cons = label_steps("consensus", [P], R, None, LabelSettings(consensus_sources=["oracle", "judge"]),
                       cache_dir=tmp_path, precomputed={"judge": judge})
    assert [lab.labels for lab in cons] == [[True, False, False], [False, False, False]]


def test_a_changed_setting_relabels_and_the_same_settings_reuse(tmp_path, monkeypatch):
    calls = []

    def fake_prm(problems, rollouts, verdicts, settings, model, tokenizer, mc_dir):
        calls.append(settings.prm_threshold)
        return [dataclasses.replace(lab, source="prm") for lab in OracleJudge().label(problems, rollouts)]

    monkeypatch.setitem(sources.LABELERS, "prm", fake_prm)
    for t in (0.5, 0.5, 0.7):
        label_steps("prm", [P], R, None, LabelSettings(prm_model="x", prm_threshold=t), cache_dir=tmp_path)
    assert calls == [0.5, 0.7] and len(list(tmp_path.glob("labels-prm-*/manifest.json"))) == 2


def test_the_cache_key_is_the_one_bcpg_stages_were_written_with():
    """Stage names must not drift: existing ``labels-{source}-{digest}`` directories stay valid."""
    from negrl.io import ids_digest

    s = LabelSettings(prm_model="runs/prm", prm_threshold=0.5)
    key = source_settings("prm", s, R)
    assert key == {"source": "prm", "segment_rule": "lines", "n": 2, "rollouts": ids_digest(["p#0", "p#1"]),
                   "prm_model": "runs/prm", "prm_threshold": 0.5}
    assert source_settings("judge", LabelSettings(), R)["judge_model"] == "<the policy>"
    import json

    assert stage_name("prm", key) == f"labels-prm-{ids_digest([json.dumps(key, sort_keys=True)])}"


def test_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="unknown label source 'nope'"):
        label_steps("nope", [P], R, None, LabelSettings())
    with pytest.raises(ValueError, match="needs prm_model"):
        label_steps("prm", [P], R, None, LabelSettings())
    with pytest.raises(ValueError, match="needs the rollout policy"):
        label_steps("mc", [P], R, None, LabelSettings())
    with pytest.raises(ValueError, match="non-empty subset"):
        label_steps("consensus", [P], R, None, LabelSettings(consensus_sources=["magic"]))
