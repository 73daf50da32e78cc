"""The labelling stage (recipes/label_steps.py), config loading, and the validation recipe end to end (slow)."""

from __future__ import annotations

import json

import pytest

from negrl.experiments.config import ConfigError, load_config
from negrl.experiments.label_steps import LabelStepsConfig, run_label_steps
from negrl.experiments.validate_steps import ValidateStepsConfig
from negrl.io import read_stage, write_stage
from negrl.records import Problem, Rollout, StepLabels


P = Problem(problem_id="p", domain="arithmetic", prompt="Q: (3+4)*2\n", answer="14",
            meta={"operands": [3, 4, 2], "ops": ["+", "*"], "values": [7, 14]})
R = [Rollout(rollout_id="p#0", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15"),
     Rollout(rollout_id="p#1", problem_id="p", completion="3+4=8\n8*2=16\nAnswer: 16")]


def test_oracle_and_consensus_stages(tmp_path):
    write_stage(tmp_path / "problems", [P], Problem)
    write_stage(tmp_path / "rollouts", R, Rollout)
    cfg = LabelStepsConfig(source="oracle", problems=str(tmp_path / "problems"), rollouts=str(tmp_path / "rollouts"),
                           output_dir=str(tmp_path / "oracle"), stepwise=str(tmp_path / "oracle.jsonl"))
    labels = run_label_steps(cfg)
    assert [lab.first_error for lab in labels] == [1, 0]
    from negrl.steps.stepwise import load_stepwise

    assert list(load_stepwise(tmp_path / "oracle.jsonl")["labels"]) == [[True, False, False], [False, False, False]]
    assert read_stage(tmp_path / "oracle" / "labels", StepLabels) == labels
    assert json.loads((tmp_path / "oracle" / "config.json").read_text())["source"] == "oracle"
    other = [StepLabels(rollout_id=lab.rollout_id, steps=lab.steps, values=[None] * 3, labels=[True, True, None],
                        first_error=None, source="judge") for lab in labels]
    write_stage(tmp_path / "judge", other, StepLabels)
    cons = run_label_steps(LabelStepsConfig(
        source="consensus", consensus_inputs=[str(tmp_path / "oracle" / "labels"), str(tmp_path / "judge")],
        output_dir=str(tmp_path / "cons")))
    assert [lab.labels for lab in cons] == [[True, False, False], [False, False, False]]
    with pytest.raises(ValueError, match="needs policy"):
        run_label_steps(LabelStepsConfig(source="mc", problems=str(tmp_path / "problems"),
                                         rollouts=str(tmp_path / "rollouts"), output_dir=str(tmp_path / "mc")))


def test_load_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("n_problems: 8\nmc: {k: 3}\n")
    cfg = load_config(ValidateStepsConfig, path, ["judge=null", "consensus_pairs=[[mc, prm]]"])
    assert cfg.n_problems == 8 and cfg.mc == {"k": 3} and cfg.judge is None and cfg.consensus_pairs == [["mc", "prm"]]
    path.write_text("n_problem: 8\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key\(s\) 'n_problem'"):
        load_config(ValidateStepsConfig, path)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_config(ValidateStepsConfig, None, ["judge"])
    with pytest.raises(ValueError, match="source"):
        LabelStepsConfig(source="magic")


@pytest.mark.slow
def test_validation_end_to_end(trained_policy_dir, tmp_path):
    from negrl.experiments.validate_steps import run_validation

    cfg = ValidateStepsConfig(
        policy=str(trained_policy_dir), task_kwargs={"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99},
        n_problems=12, samples=2, max_new_tokens=24, mc={"k": 2}, prm_problems=12, prm_samples=2, prm_steps=5,
        judge="self", judge_limit=4, output_dir=str(tmp_path / "v"),
    )
    result = run_validation(cfg)
    assert {"mc", "prm", "judge", "mc&judge", "prm&judge", "mc&prm", "vote(mc,prm,judge)"} <= set(result["all"])
    assert result["all"]["judge"]["coverage"] == 0.0  # the char policy cannot judge: None labels, never negatives
    assert (tmp_path / "v" / "table.md").exists() and (tmp_path / "v" / "prm" / "prm.json").exists()
