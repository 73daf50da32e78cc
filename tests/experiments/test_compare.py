"""Per-step negatives recipes: every config parses into the pipeline and trainer configs; end-to-end runs (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from negrl.builders import AWRRowConfig, PairConfig
from negrl.experiments.compare import results_table, run_pipeline
from negrl.experiments.methods import METHODS, lora_config
from negrl.experiments.pipeline import PipelineConfig, load_pipeline_config


REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "recipes" / "configs" / "step_rl").glob("*.yaml"))
ACCELERATE = sorted((REPO / "recipes" / "accelerate_configs").glob("*.yaml"))


def _trainer_config(method: str, kwargs: dict, tmp_path: Path):
    from negrl.sft import cpu_safe_sft_config
    from negrl.trainers.awr import AWRConfig
    from negrl.trainers.step_dpo import StepDPOConfig

    kwargs = {**kwargs, "output_dir": str(tmp_path)}
    if method in ("rft", "sft_more"):
        return cpu_safe_sft_config(**kwargs)
    if method == "awr":
        return AWRConfig(**kwargs)
    return StepDPOConfig(**kwargs)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_step_rl_configs_parse(path, tmp_path):
    cfg = load_pipeline_config(path)
    assert cfg.methods and all(m in METHODS for m in cfg.methods)
    for method, options in cfg.method_options.items():
        assert method in METHODS, f"{path.name}: unknown method {method!r}"
        lora_config(options)
        PairConfig(**options.get("pairs", {}))
        AWRRowConfig(**options.get("rows", {}))
        trainer_kwargs = {k: v for k, v in options.items() if k not in ("lora", "pairs", "rows")}
        _trainer_config(method, trainer_kwargs, tmp_path)


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_configs_parse(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["distributed_type"] in ("NO", "MULTI_GPU", "DEEPSPEED", "FSDP")
    assert cfg["num_processes"] >= 1


def test_expected_accelerate_configs_exist():
    assert {p.stem for p in ACCELERATE} >= {"cpu", "multi_gpu", "zero2", "zero3", "fsdp"}


def test_unknown_pipeline_field_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_prompt: 3\n")
    with pytest.raises(ValueError, match="bad.yaml.*n_prompt"):
        load_pipeline_config(bad)


def test_results_table_mean_and_std():
    runs = {s: {"results": {"rft": {"seed": s, "greedy": g, "sampled": 0.5}}} for s, g in [(0, 0.6), (1, 0.8)]}
    table = results_table(runs)
    assert "| rft | 0,1 | 70.0 ± 14.1 | 50.0 ± 0.0 | 60.0, 80.0 |" in table


def _tiny_config(policy_dir: Path, out: Path) -> PipelineConfig:
    return load_pipeline_config(REPO / "recipes/configs/step_rl/tiny_test.yaml", base_policy=str(policy_dir),
                                output_dir=str(out), threads=1)


@pytest.mark.slow
def test_pipeline_end_to_end_and_cached_rerun(trained_policy_dir, tmp_path):
    cfg = _tiny_config(trained_policy_dir, tmp_path / "run")
    out = run_pipeline(cfg)
    assert set(out["results"]) == set(cfg.methods)
    for name, res in out["results"].items():
        assert 0.0 <= res["greedy"] <= 1.0 and res["n"] == cfg.n_test
        if name != "base":
            assert (cfg.run_dir / "models" / name / "done.json").exists()
            assert (cfg.run_dir / "models" / name / "adapter" / "adapter_config.json").exists()  # LoRA runs
        stored = json.loads((cfg.run_dir / "eval" / f"{name}.json").read_text())
        assert len(stored["completions"]) == cfg.n_test * (1 + cfg.eval_samples) and "completions" not in res
    assert out["data"]["rollouts"] == cfg.n_prompts * cfg.samples_per_prompt
    assert (cfg.run_dir / "config.yaml").exists() and (cfg.run_dir / "data" / "step_dpo.jsonl").exists()
    first = json.loads((cfg.run_dir / "data" / "step_dpo.jsonl").read_text().splitlines()[0])
    assert not first["rejected_eos"] and first["rejected"].endswith("\n")  # truncated after a step line
    stamp = (cfg.run_dir / "models" / "rft" / "done.json").stat().st_mtime
    again = run_pipeline(cfg)  # every stage and model is reused
    assert (cfg.run_dir / "models" / "rft" / "done.json").stat().st_mtime == stamp
    assert again["results"]["rft"] == out["results"]["rft"]


@pytest.mark.slow
def test_two_cpu_processes_with_torchrun(trained_policy_dir, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed next to the interpreter")
    out = tmp_path / "ddp"
    # --standalone: a free rendezvous port, so a busy default port (29500) cannot fail the run.
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", str(REPO / "recipes/train_step_rl.py"),
           "--config", str(REPO / "recipes/configs/step_rl/tiny_test.yaml"), "--base_policy", str(trained_policy_dir),
           "--output_dir", str(out), "--method", "step_dpo", "--method", "awr", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for method in ("step_dpo", "awr"):
        done = json.loads((out / "seed0" / "models" / method / "done.json").read_text())
        assert done["steps"] == 3 and done["last_loss"] is not None
        assert json.loads((out / "seed0" / "eval" / f"{method}.json").read_text())["n"] == 32
    # Monte-Carlo labelling split its work units over the two processes (WORLD_SIZE=2).
    assert (out / "seed0" / "step_labels" / "proc-00-of-02").exists()


def test_finished_model_is_not_reused_for_other_method_options(tmp_path, monkeypatch):
    from negrl.experiments.compare import run_method
    from negrl.experiments.methods import METHODS
    from negrl.experiments.pipeline import PipelineConfig
    from negrl.io import StageError

    calls = []

    def fake(ctx):
        calls.append(ctx.options)
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        (ctx.output_dir / "done.json").write_text(json.dumps({"options": {"learning_rate": 0.001}}))
        return str(ctx.output_dir)

    monkeypatch.setitem(METHODS, "fake", fake)
    cfg = PipelineConfig(output_dir=str(tmp_path), method_options={"fake": {"learning_rate": 1e-3}})
    assert run_method(cfg, "fake", data=None) == run_method(cfg, "fake", data=None)
    assert calls == [{"learning_rate": 1e-3}]  # the second call reused the finished model
    other = PipelineConfig(output_dir=str(tmp_path), method_options={"fake": {"learning_rate": 3e-4}})
    with pytest.raises(StageError, match="trained with method options"):
        run_method(other, "fake", data=None)
