"""The real-model configs match the code: loaded through the loader their recipe uses, then checked field by field
against what the run would build from them (no model download: parse and validate only).

``tests/test_recipe_configs.py`` only parses every YAML; a real-model run fails hours later, after sampling, on what
parsing does not see: a Monte-Carlo key, a trainer option, a pair option, a label source, a PRM without the options
its family needs. These tests build each of those objects from the config, as the run does, before any model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest


ROOT = Path(__file__).resolve().parents[1]
PIPELINE_CONFIGS = [
    "recipes/configs/step_rl/qwen_math_gsm8k.yaml",
    "recipes/configs/step_rl/deepseek_math_7b_math.yaml",
    "recipes/configs/real/smollm2_gsm8k_tiny.yaml",
    "recipes/configs/real/smollm2_mbpp_tiny.yaml",
]
BCPG_CONFIGS = ["recipes/configs/bcpg/r1_distill_qwen_1.5b_math.yaml"]
LIKRA_CONFIGS = [  # the single-run configs (likra/arc_seeds.yaml is the seeds experiment's, tested with it)
    "recipes/configs/likra/mistral7b_arc_challenge.yaml",
    "recipes/configs/likra/smollm2_arc_easy.yaml",
    "recipes/configs/likra/rerank_arithmetic.yaml",
    "recipes/configs/likra/tiny_arithmetic_choice.yaml",
]
DPO_METHODS = ("outcome_dpo", "step_dpo", "step_dpo_prefix")


def load_pipeline(path: str) -> Any:
    """``recipes/compare_methods.py`` / ``recipes/train_step_rl.py``: ``pipeline_parser`` + ``pipeline_config``."""
    from negrl.experiments.cli import pipeline_config, pipeline_parser

    return pipeline_config(pipeline_parser("test", "test").parse_args(["--config", str(ROOT / path)]))


def trainer_config(cfg: Any, method: str, options: dict[str, Any], tmp_path: Path) -> Any:
    """The trainer config (and builder configs) ``negrl.experiments.methods`` builds from a method's options."""
    from negrl.builders import AWRRowConfig, PairConfig
    from negrl.experiments.methods import lora_config, trainer_kwargs
    from negrl.experiments.pipeline import MethodContext

    ctx = MethodContext(config=cfg, data=None, options=dict(options), output_dir=tmp_path / method, seed=cfg.seed)
    lora_config(options)  # LoraConfig kwargs
    if method in ("rft", "sft_more"):
        from negrl.sft import cpu_safe_sft_config

        return cpu_safe_sft_config(**trainer_kwargs(ctx, {}))
    if method in DPO_METHODS:
        from negrl.trainers.step_dpo import StepDPOConfig

        PairConfig(**options.get("pairs", {}))
        return StepDPOConfig(**trainer_kwargs(ctx, {}))
    if method == "awr":
        from negrl.trainers.awr import AWRConfig

        AWRRowConfig(**options.get("rows", {}))
        return AWRConfig(**trainer_kwargs(ctx, {}))
    if method in ("bcpg", "bcpg_nsa"):
        from negrl.experiments.bcpg import BCPGRunConfig
        from negrl.experiments.methods import _BCPG_KEYS
        from negrl.trainers.bcpg_nsa import BCPGNSAConfig

        BCPGRunConfig(**{"annotator": "mc", **{k: v for k, v in options.items() if k in _BCPG_KEYS}})
        ctx = dataclasses.replace(ctx, options={k: v for k, v in options.items() if k not in _BCPG_KEYS})
        return BCPGNSAConfig(**trainer_kwargs(ctx, {}))
    raise AssertionError(f"{method}: no options check here; add the trainer config it builds")


@pytest.mark.parametrize("path", PIPELINE_CONFIGS)
def test_pipeline_config_builds_what_its_run_builds(path: str, tmp_path: Path):
    from negrl.experiments.methods import METHODS
    from negrl.problems import is_benchmark
    from negrl.steps.monte_carlo import MonteCarloConfig

    cfg = load_pipeline(path)
    # Instruct models: sampling, labelling, training and evaluation all see the chat-formatted prompt.
    assert cfg.use_chat_template, f"{path}: an instruct model's run needs use_chat_template: true"
    assert is_benchmark(cfg.task), f"{path}: task {cfg.task!r} is no benchmark"
    assert set(cfg.methods) <= set(METHODS) and set(cfg.method_options) <= set(cfg.methods), path
    # prepare_data's MonteCarloConfig; the pipeline hands it the torch policy, so only the hf backend can run.
    mc = MonteCarloConfig(**{"seed": cfg.seed, "use_chat_template": cfg.use_chat_template,
                             "max_new_tokens": cfg.max_new_tokens, **cfg.mc})
    assert mc.backend == "hf", f"{path}: the pipeline's Monte-Carlo stage runs on the torch policy (backend hf)"
    for method in cfg.methods:
        if method == "base":
            continue
        options = cfg.method_options.get(method, {})
        args = trainer_config(cfg, method, options, tmp_path)
        if method in DPO_METHODS:
            # the papers train plain DPO; RPO's NLL term is a choice the config has to state
            assert "rpo_alpha" in options, f"{path}: {method} must state rpo_alpha (0 = the papers' plain DPO)"
            assert args.rpo_alpha == options["rpo_alpha"]


def test_tiny_smollm2_configs_are_cpu_sized():
    """The documented end-to-end commands stay a few minutes at one thread (README, real models)."""
    for path in ("recipes/configs/real/smollm2_gsm8k_tiny.yaml", "recipes/configs/real/smollm2_mbpp_tiny.yaml"):
        cfg = load_pipeline(path)
        assert cfg.base_policy == "smollm2" and cfg.threads == 1, path
        assert cfg.n_prompts * cfg.samples_per_prompt <= 32 and cfg.n_test <= 8 and cfg.max_new_tokens <= 128, path
        assert all(o.get("max_steps", 0) in (1, 2, 3) for o in cfg.method_options.values()), path


@pytest.mark.parametrize("path", BCPG_CONFIGS)
def test_bcpg_config_builds_what_its_run_builds(path: str):
    from negrl.benchmarks import BENCHMARKS
    from negrl.experiments.bcpg import ANNOTATORS, label_settings
    from negrl.experiments.cli import bcpg_parser

    cfg, args = bcpg_parser().parse_args_and_config(args=["--config", str(ROOT / path)])
    assert cfg.use_chat_template, f"{path}: an instruct / distilled model needs use_chat_template: true"
    assert cfg.benchmark in BENCHMARKS and cfg.eval_benchmark in BENCHMARKS, path
    assert cfg.benchmark_path is None, f"{path}: leave benchmark_path unset ($NEGRL_DATA or the default data root)"
    assert cfg.backend in ("hf", "vllm"), path
    assert cfg.annotator in ANNOTATORS, path
    settings = label_settings(cfg, args.seed)  # the label sources' settings, as run_round builds them
    sources = cfg.consensus_sources if cfg.annotator == "consensus" else [cfg.annotator]
    if "prm" in sources:
        assert settings.prm_model, f"{path}: the prm source needs prm_model"
        if "Qwen2.5-Math-PRM" in settings.prm_model:  # its reward head is remote code: without it, no head loads
            assert (settings.prm_options or {}).get("trust_remote_code") is True, path


@pytest.mark.parametrize("path", LIKRA_CONFIGS)
def test_likra_config_loads_through_its_recipe_loader(path: str):
    from negrl.experiments.config import load_config

    if "rerank" in path:
        from negrl.experiments.likra_rerank import RerankConfig

        cfg = load_config(RerankConfig, ROOT / path)
        assert cfg.k >= 2, path
        return
    from negrl.experiments.likra_curve import load_experiment_config

    cfg = load_experiment_config(ROOT / path)
    assert cfg.benchmark in ("arc_easy", "arc_challenge", "arithmetic_choice"), path
    assert cfg.dtype in ("auto", "float32", "bfloat16", "float16"), path
