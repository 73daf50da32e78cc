"""Iterated rounds: a two-round run on a tiny trained policy — data sharing, on-policy sampling, budgets, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from negrl.experiments.rounds import RoundsConfig, load_rounds_config, plot_rounds, results_table, run_rounds
from negrl.io import read_stage
from negrl.records import Rollout, StepLabels


REPO = Path(__file__).resolve().parents[2]
TINY = {"max_steps": 2, "per_device_train_batch_size": 8, "warmup_steps": 0, "logging_steps": 1}


def _cfg(base: Path, out: Path) -> RoundsConfig:
    return RoundsConfig.from_dict({
        "base_policy": str(base), "output_dir": str(out), "task": "arithmetic",
        "task_kwargs": {"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99},
        "pool_size": 12, "n_test": 8, "rounds": 2, "seeds": [0], "samples_per_prompt": 4, "max_new_tokens": 40,
        "mc": {"k": 2}, "pass_k": [1, 2], "pass_k_problems": 4, "eval_samples": 1, "show_progress": False,
        "arms": {"rft": {"method": "rft", "options": TINY},
                 "step_dpo": {"method": "step_dpo", "options": TINY},
                 "rft_matched": {"method": "rft", "match_samples": "step_dpo", "options": TINY},
                 "rft_neg": {"method": "rft_neg", "options": {**TINY, "rows": {"prompts": "all"}}},
                 "awr": {"method": "awr", "options": TINY},
                 "bcpg_nsa": {"method": "bcpg_nsa", "options": TINY}},
    })


def test_two_rounds_share_round_one_sample_on_policy_and_budgets_add_up(trained_policy_dir, tmp_path) -> None:
    cfg = _cfg(trained_policy_dir, tmp_path / "rounds")
    run = run_rounds(cfg)[0]
    root = tmp_path / "rounds" / "seed0"
    P, S = cfg.pool_size, cfg.samples_per_prompt

    # Round 1: rft, step_dpo and rft_neg train on the same samples of the base (one shared, labelled directory).
    shared = read_stage(root / "round1" / "data" / "shared" / "rollouts", Rollout)
    assert len(shared) == P * S and {r.model for r in shared} == {str(trained_policy_dir)}
    assert not (root / "round1" / "data" / "rft").exists()
    # Round 2: every arm samples from its own round-1 policy (on-policy), on the same pool.
    # (An arm that had nothing to train on in round 1 keeps the base and samples from it again.)
    rows = run["arms"]
    assert rows["rft_neg"][0]["trained"]  # negatives of every prompt: rows whenever a sample has a pit
    for arm in ("rft", "step_dpo", "rft_neg"):
        r2 = read_stage(root / "round2" / "data" / arm / "rollouts", Rollout)
        policy = root / "round1" / "models" / arm if rows[arm][0]["trained"] else trained_policy_dir
        assert {r.model for r in r2} == {str(policy)}
        assert {r.problem_id for r in r2} == {r.problem_id for r in shared}
    assert not (root / "round2" / "data" / "rft" / "step_labels").exists()  # RFT reads no labels: none computed

    for arm in cfg.arms:  # every registered method runs as an arm, round after round
        assert [r["round"] for r in rows[arm]] == [1, 2], rows[arm]
    assert rows["awr"][0]["cost"] == rows["step_dpo"][0]["cost"]  # the same shared, labelled round-1 data
    for r in (1, 2):
        rft, dpo, matched = (rows[a][r - 1]["cost"] for a in ("rft", "step_dpo", "rft_matched"))
        assert rft["samples"] == dpo["samples"] == P * S
        assert rft["mc_continuations"] == 0 and dpo["mc_continuations"] > 0
        # RFT at matched samples: S + ceil(C / P) per prompt, C = the per-step arm's continuations this round.
        assert matched["samples"] == P * (S + math.ceil(dpo["mc_continuations"] / P))
        assert matched["samples"] >= dpo["samples_plus_continuations"]
        assert dpo["samples_plus_continuations"] == dpo["samples"] + dpo["mc_continuations"]
    # The labelling cost charged to step_dpo is what its labelling sampled (the labels' continuations are kept).
    labels = read_stage(root / "round2" / "data" / "step_dpo" / "step_labels", StepLabels)
    assert labels and rows["step_dpo"][1]["cost"]["mc_continuations"] >= len(labels)
    cost = json.loads((root / "round2" / "data" / "step_dpo" / "cost.json").read_text())
    assert cost["mc_continuations"] == rows["step_dpo"][1]["cost"]["mc_continuations"]

    # Evaluation: held-out, pool, and pass@k after the last round (and for the base).
    last = rows["step_dpo"][1]
    assert 0 <= last["greedy"] <= 1 and "pool_greedy" in last and set(last["pass_k"]) == {"1", "2"}
    assert "pass_k" not in rows["step_dpo"][0] and set(run["base"]["pass_k"]) == {"1", "2"}

    table = results_table({0: run}, cfg)
    assert "| rft_neg |" in table and "Δ vs rft" in table and "(1 seed)" in table
    assert plot_rounds({0: run}, cfg, tmp_path / "rounds.png").stat().st_size > 0

    # The measurements behind a null, read from disk: shares of every (arm, round), the pit/oracle agreement of the
    # labelled arms, and the pair log-prob shift of a DPO arm that trained.
    from negrl.experiments.rounds_report import data_shares, mechanism_rows, mechanism_table

    mech = {(m["arm"], m["round"]): m for m in mechanism_rows(cfg, {0: run})}
    assert set(mech) == {(a, r) for a in cfg.arm_specs() for r in (1, 2)}
    assert mech[("rft", 1)]["all_wrong"] == data_shares(root / "round1" / "data" / "shared")["all_wrong"]
    assert 0 <= mech[("step_dpo", 1)]["pit_oracle"] <= 1 and "pit_oracle" not in mech[("rft", 1)]
    assert all(("d_chosen" in mech[("step_dpo", r)]) == rows["step_dpo"][r - 1]["trained"] for r in (1, 2))
    assert "| rft_neg | 2 |" in mechanism_table(list(mech.values()))

    # Resume: a rerun trains nothing and gives the same rows.
    done = root / "round2" / "models" / "step_dpo" / "done.json"
    mtime = done.stat().st_mtime_ns
    again = run_rounds(cfg)[0]
    assert done.stat().st_mtime_ns == mtime
    strip = lambda arms: {a: [{k: v for k, v in r.items() if k != "seconds"} for r in rs] for a, rs in arms.items()}  # noqa: E731
    assert strip(again["arms"]) == strip(run["arms"])


def test_rounds_config_errors_name_the_field(tmp_path) -> None:
    base = {"base_policy": str(tmp_path), "output_dir": str(tmp_path / "o")}
    with pytest.raises(ValueError, match=r"arms\.x: unknown method 'nope'"):
        RoundsConfig.from_dict({**base, "arms": {"x": {"method": "nope"}}})
    with pytest.raises(ValueError, match=r"arms\.m: match_samples='later' must name an arm listed before it"):
        RoundsConfig.from_dict({**base, "arms": {"m": {"method": "rft", "match_samples": "later"},
                                                  "later": {"method": "step_dpo"}}})
    with pytest.raises(ValueError, match=r"arms\.x\.sampling: unknown key"):
        RoundsConfig.from_dict({**base, "arms": {"x": {"method": "rft", "sampling": {"top_k": 3}}}})
    with pytest.raises(ValueError, match="arms"):
        RoundsConfig.from_dict({**base, "arms": {"x": {"method": "rft", "optoins": {}}}})


@pytest.mark.parametrize("path", sorted((REPO / "recipes" / "configs" / "rounds").glob("*.yaml")), ids=lambda p: p.name)
def test_rounds_configs_parse(path: Path) -> None:
    cfg = load_rounds_config(path)
    assert len(cfg.seeds) >= 3 and cfg.arm_specs()
