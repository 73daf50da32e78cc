"""The demo end to end on tiny settings, for both embedded tasks; a second run reuses every stage."""

from pathlib import Path

import pytest
import yaml

from negrl.experiments.demo import load_demo_config, run_demo


def _tiny_demo(tmp_path: Path, task: str, task_kwargs: dict, max_new_tokens: int, methods: list[str]) -> Path:
    # A ~15 s base (as tests/conftest.py's trained_policy_dir) so that samples are both right and wrong.
    cfg = {
        "output_dir": str(tmp_path / "demo"),
        "base": {"task": task, "task_kwargs": task_kwargs, "n_train": 2000, "n_test": 32, "num_train_epochs": 3,
                 "warmup_steps": 20, "max_new_tokens": max_new_tokens, "disable_tqdm": True},
        "pipeline": {"n_prompts": 32, "samples_per_prompt": 4, "max_new_tokens": max_new_tokens,
                     "mc": {"k": 2, "early_stop": True}, "methods": methods, "eval_samples": 1,
                     "show_progress": False, "method_options": {m: {"num_train_epochs": 1} for m in methods}},
    }
    if "rft" in methods:  # the reranker needs verified positives and negatives, which a near-chance base lacks
        cfg["likra_rerank"] = {"k": 4, "n_train": 32, "n_test": 8, "max_new_tokens": max_new_tokens, "ws": [1.0]}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reuses_its_stages(tmp_path):
    knobs = {"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99}
    config = _tiny_demo(tmp_path, "arithmetic", knobs, 24, ["base", "rft", "step_dpo", "bcpg_nsa"])
    report = run_demo(config)
    for row in ("| base |", "| rft |", "| step_dpo |", "| bcpg_nsa |", "| likra |", "| majority |"):
        assert row in report, row
    out = tmp_path / "demo"
    done = {p: p.stat().st_mtime_ns for p in out.glob("pipeline/seed0/models/*/done.json")}
    assert len(done) == 3 and (out / "likra_rerank" / "rerank.json").exists()
    assert run_demo(config) == report  # everything cached: same table, nothing retrained
    assert {p: p.stat().st_mtime_ns for p in done} == done


@pytest.mark.slow
def test_demo_accepts_the_path_star_task(tmp_path):
    knobs = {"arms": 2, "arm_length": 2, "min_id": 0, "max_id": 9}
    report = run_demo(_tiny_demo(tmp_path, "path_star", knobs, 12, ["base"]))
    assert "base policy: path_star" in report and "| base |" in report
    assert (tmp_path / "demo/pipeline/seed0/step_labels/manifest.json").exists()


def test_demo_configs_parse_and_bad_keys_are_named(tmp_path):
    from negrl.experiments.pipeline import PipelineConfig
    from negrl.experiments.rounds import RoundsConfig

    for path in Path("recipes/configs/demo").glob("*.yaml"):
        cfg = load_demo_config(path)
        assert cfg["base"]["task"] in ("arithmetic", "path_star") and ("rounds" in cfg or "pipeline" in cfg)
        if "rounds" in cfg:
            rounds = RoundsConfig.from_dict({**cfg["rounds"], "base_policy": "b", "output_dir": "o"})
            assert len(rounds.seeds) >= 3  # the demo reports paired differences with intervals
        if "pipeline" in cfg:
            assert PipelineConfig.from_dict(cfg["pipeline"]).methods[0] == "base"
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: x\nbase: {}\npipelin: {}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown top-level key\(s\) \['pipelin'\]"):
        load_demo_config(bad)


@pytest.mark.slow
def test_demo_rounds_section_prints_paired_differences_and_writes_its_figure(tmp_path):
    knobs = {"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99}
    path = _tiny_demo(tmp_path, "arithmetic", knobs, 40, ["base"])
    cfg = yaml.safe_load(path.read_text())
    del cfg["pipeline"]
    tiny = {"max_steps": 2, "per_device_train_batch_size": 8}
    cfg["rounds"] = {"pool_size": 12, "n_test": 8, "rounds": 2, "seeds": [0, 1], "samples_per_prompt": 4,
                     "max_new_tokens": 40, "mc": {"k": 2}, "eval_samples": 1, "pass_k": [1, 2], "pass_k_problems": 4,
                     "show_progress": False,
                     "arms": {"rft": {"method": "rft", "options": tiny},
                              "rft_neg": {"method": "rft_neg", "options": {**tiny, "rows": {"prompts": "all"}}}}}
    path.write_text(yaml.safe_dump(cfg))
    report = run_demo(path)
    assert "| rft_neg |" in report and "rft_neg − rft:" in report and "95 % CI over 2 seeds" in report
    assert (tmp_path / "demo" / "rounds" / "rounds.png").stat().st_size > 0
    assert run_demo(path) == report  # cached
