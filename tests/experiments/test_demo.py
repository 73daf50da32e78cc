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
    for path in Path("recipes/configs/demo").glob("*.yaml"):
        cfg = load_demo_config(path)
        assert cfg["base"]["task"] in ("arithmetic", "path_star") and cfg["pipeline"]["methods"][0] == "base"
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: x\nbase: {}\npipelin: {}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown top-level key\(s\) \['pipelin'\]"):
        load_demo_config(bad)
