"""The ``negrl`` command: sample → label (→ stepwise rows) → eval through the subcommands, and their errors."""

from __future__ import annotations

import json

import pytest

from negrl.experiments.cli import main
from negrl.experiments.config import ConfigError


KNOBS = '{min_steps: 1, max_steps: 2, digits: 1, max_value: 99}'


def test_sample_label_eval_on_the_tiny_policy(trained_policy_dir, tmp_path, capsys):
    out = tmp_path / "s"
    main(["sample", "--set", f"policy={trained_policy_dir}", "problems=arithmetic", f"problem_kwargs={KNOBS}",
          "limit=6", "num_samples=2", "max_new_tokens=24", f"output_dir={out}"])
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["problems"] == 6 and counts["rollouts"] == 12
    assert (out / "config.yaml").exists() and (out / "verdicts" / "manifest.json").exists()
    main(["label", "--set", "source=oracle", f"problems={out / 'problems'}", f"rollouts={out / 'rollouts'}",
          f"output_dir={tmp_path / 'labels'}", f"stepwise={tmp_path / 'stepwise.jsonl'}"])
    assert "12 rollouts labelled by oracle" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "stepwise.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(len(r["completions"]) == len(r["labels"]) for r in rows)
    main(["eval", "--set", f"policy={trained_policy_dir}", f"problem_kwargs={KNOBS}", "limit=8", "samples=1",
          "max_new_tokens=24", f"output={tmp_path / 'eval.json'}"])
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["n"] == 8 and 0.0 <= ev["greedy"] <= 1.0
    assert json.loads((tmp_path / "eval.json").read_text())["config"]["limit"] == 8


def test_errors_name_the_command_the_key_and_the_method(capsys):
    main([])
    assert "negrl train" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown command 'trian'"):
        main(["trian"])
    with pytest.raises(SystemExit, match="unknown method"):
        main(["train", "step_dop", "--config", "x.yaml"])
    with pytest.raises(ConfigError, match=r"--set: key 'limit' expects"):
        main(["sample", "--set", "limit=6.5"])


def test_the_comparison_field_flags_are_exactly_set_overrides():
    from negrl.experiments.cli import pipeline_config, pipeline_parser
    from tests.conftest import REPO_ROOT

    cfg_file = str(REPO_ROOT / "recipes/configs/step_rl/tiny_test.yaml")
    flags = pipeline_parser("t", "").parse_args(["--config", cfg_file, "--output_dir", "runs/x", "--threads", "1",
                                                 "--n_prompts", "16"])
    sets = pipeline_parser("t", "").parse_args(["--config", cfg_file, "--set", "output_dir=runs/x", "threads=1",
                                                "n_prompts=16"])
    assert pipeline_config(flags, ["awr"]) == pipeline_config(sets, ["awr"])
    cfg = pipeline_config(flags, ["awr"])
    assert (cfg.output_dir, cfg.threads, cfg.n_prompts, cfg.methods) == ("runs/x", 1, 16, ["awr"])


def test_base_training_arguments_set_in_the_yaml_win_even_at_trl_defaults(tmp_path, monkeypatch) -> None:
    # num_train_epochs: 3 equals TRL's default; it used to be dropped, so the base trained its default 40 epochs.
    from negrl.experiments import base_policy, cli

    cfg = tmp_path / "base.yaml"
    cfg.write_text("output_dir: " + str(tmp_path / "b") + "\nnum_train_epochs: 3\nn_train: 8\n", encoding="utf-8")
    seen = {}
    monkeypatch.setattr(base_policy, "train_base_policy", lambda c, args: seen.update(args=args) or {
        "task": "t", "parameters": 1, "train_seconds": 0.0, "held_out_greedy": 0.0, "held_out_sampled": 0.0,
        "held_out_n": 0, "train_greedy": 0.0})
    cli.train_base(["--config", str(cfg), "--learning_rate", "0.001"])
    assert seen["args"].num_train_epochs == 3 and seen["args"].learning_rate == 0.001
    assert seen["args"].per_device_train_batch_size == 64  # not given: the base's own default
    assert cli._given_keys(["--config", str(cfg), "--seed=3"]) == {"output_dir", "num_train_epochs", "n_train", "seed"}
