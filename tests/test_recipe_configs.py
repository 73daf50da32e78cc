"""Every YAML under recipes/configs/ (and eval/configs/) parses into the dataclasses its recipe reads, typed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from trl import TrlParser


ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "recipes" / "configs").rglob("*.yaml")) + sorted((ROOT / "eval" / "configs").rglob("*.yaml"))


def _trl(*classes: type) -> Callable[[Path], None]:
    def parse(path: Path) -> None:
        TrlParser(classes).parse_yaml_file(str(path))  # unknown keys raise

    return parse


def _pipeline(path: Path) -> None:
    from negrl.experiments.methods import METHODS
    from negrl.experiments.pipeline import load_pipeline_config

    cfg = load_pipeline_config(path)
    assert set(cfg.methods) <= set(METHODS) and set(cfg.method_options) <= set(METHODS)


def _bcpg(path: Path) -> None:
    if path.name.startswith("experiment"):  # pipeline fields + variants + seeds + prm (recipes/bcpg_experiment.py)
        from negrl.experiments.bcpg import TaskPRMConfig
        from negrl.experiments.config import build, read_yaml
        from negrl.experiments.methods import METHODS
        from negrl.experiments.pipeline import load_pipeline_config

        raw = read_yaml(path)
        variants, _seeds, prm = raw.pop("variants"), raw.pop("seeds"), raw.pop("prm")
        load_pipeline_config(None, **raw)
        build(TaskPRMConfig, prm, f"{path}: prm")
        assert {v["method"] for v in variants.values()} <= set(METHODS)
        return
    from negrl.experiments.bcpg import BCPGRunConfig
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig

    _trl(BCPGRunConfig, BCPGNSAConfig)(path)


def _base(path: Path) -> None:
    from negrl.experiments.base_policy import BasePolicyConfig
    from negrl.sft import NegrlSFTConfig

    _trl(BasePolicyConfig, NegrlSFTConfig)(path)


def _ablation(path: Path) -> None:
    from negrl.experiments.ablation import AblationConfig

    AblationConfig.from_yaml(path).pipeline_cfg()  # its pipeline_config file is loaded too


def _demo(path: Path) -> None:
    import dataclasses

    from negrl.experiments.base_policy import BasePolicyConfig, base_sft_args
    from negrl.experiments.config import build
    from negrl.experiments.demo import load_demo_config
    from negrl.experiments.likra_rerank import RerankConfig
    from negrl.experiments.pipeline import PipelineConfig

    cfg = load_demo_config(path)
    base = cfg.get("base", {})
    own = {f.name for f in dataclasses.fields(BasePolicyConfig)}
    build(BasePolicyConfig, {k: v for k, v in base.items() if k in own}, f"{path}: base")
    base_sft_args("/tmp/unused", **{k: v for k, v in base.items() if k not in own})
    PipelineConfig.from_dict(cfg.get("pipeline", {}), where=f"{path}: pipeline")
    if cfg.get("likra_rerank") is not None:
        build(RerankConfig, cfg["likra_rerank"], f"{path}: likra_rerank")


def _likra(path: Path) -> None:
    from negrl.experiments.config import load_config

    if "rerank" in path.name:
        from negrl.experiments.likra_rerank import RerankConfig

        load_config(RerankConfig, path)
    elif path.name.startswith("arc_seeds"):
        from negrl.experiments.likra_seeds import load_seeds_config

        load_seeds_config(path)
    else:
        from negrl.experiments.likra_curve import load_experiment_config

        load_experiment_config(path)


def _star(path: Path) -> None:
    return _likra(path) if "rerank" in path.name else _pipeline(path)


def _steps(path: Path) -> None:
    from negrl.experiments.config import load_config
    from negrl.experiments.label_steps import LabelStepsConfig
    from negrl.experiments.validate_steps import ValidateStepsConfig

    load_config(ValidateStepsConfig if path.name.startswith("validate") else LabelStepsConfig, path)


def _eval(path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT))
    from eval.run import EvalConfig

    _trl(EvalConfig)(path)


def _rounds(path: Path) -> None:
    from negrl.experiments.rounds import load_rounds_config

    load_rounds_config(path)


PARSERS: dict[str, Callable[[Path], None]] = {
    "recipes/configs/ablation": _ablation, "recipes/configs/base": _base, "recipes/configs/bcpg": _bcpg,
    "recipes/configs/demo": _demo, "recipes/configs/likra": _likra, "recipes/configs/star": _star,
    "recipes/configs/real": _pipeline, "recipes/configs/step_rl": _pipeline, "recipes/configs/steps": _steps,
    "recipes/configs/rounds": _rounds, "eval/configs": _eval,
}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_parses(path: Path):
    folder = str(path.parent.relative_to(ROOT))
    assert folder in PARSERS, f"{folder}: no parser registered for this config folder (add one to PARSERS)"
    PARSERS[folder](path)


def test_a_mistyped_key_in_a_recipe_config_names_the_file(tmp_path):
    from negrl.experiments.config import ConfigError
    from negrl.experiments.pipeline import load_pipeline_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("n_prompts: 12.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'n_prompts' expects int, got 12\.5"):
        load_pipeline_config(bad)
