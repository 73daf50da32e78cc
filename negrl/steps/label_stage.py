"""The step-labelling stage: read problems / rollouts (/ verdicts) stages, label with one source, write StepLabels.

``run_label_steps(LabelStepsConfig(...))`` is what ``recipes/label_steps.py`` runs. Sources: ``"mc"`` (Monte-Carlo
values with the ``policy`` as rollout policy; resumable, and split across processes under ``accelerate launch``),
``"prm"`` (a PRM saved by ``PRMScorer.save_pretrained``), ``"judge"`` (an LLM judge: ``judge_model`` directory,
``"smollm2"``, or an OpenAI-compatible ``judge_url``), ``"oracle"`` (exact checker of embedded tasks), and
``"consensus"`` (combines finished label stages listed in ``consensus_inputs``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.io import read_stage, write_stage
from negrl.records import Problem, Rollout, StepLabels, Verdict


SOURCES = ("mc", "prm", "judge", "oracle", "consensus")


@dataclass
class LabelStepsConfig:
    """Inputs, source and settings of one labelling stage."""

    source: str = "mc"
    problems: str = ""
    rollouts: str = ""
    verdicts: str | None = None
    output_dir: str = "runs/steps/labels"
    policy: str | None = None
    mc: dict[str, Any] = field(default_factory=dict)
    prm_model: str | None = None
    prm_threshold: float | None = None
    judge_model: str | None = None
    judge_url: str | None = None
    judge_max_new_tokens: int = 96
    rule: str = "lines"
    consensus_inputs: list[str] = field(default_factory=list)
    consensus_rule: str = "and"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"LabelStepsConfig.source: {self.source!r} is not one of {SOURCES}")


def _verdicts(cfg: LabelStepsConfig, problems: list[Problem], rollouts: list[Rollout]) -> list[Verdict]:
    if cfg.verdicts:
        return read_stage(cfg.verdicts, Verdict)
    from negrl.verifiers import verify_rollouts

    return verify_rollouts(problems, rollouts)


def _label(cfg: LabelStepsConfig, problems: list[Problem], rollouts: list[Rollout], out: Path) -> list[StepLabels]:
    if cfg.source == "oracle":
        from negrl.steps.judge import OracleJudge

        return OracleJudge().label(problems, rollouts, rule=cfg.rule)
    if cfg.source == "mc":
        from negrl.modeling import load_policy
        from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo

        if not cfg.policy:
            raise ValueError("source 'mc' needs policy (the rollout policy directory or id)")
        model, tok = load_policy(cfg.policy)
        mc = MonteCarloConfig(**{"segment_rule": cfg.rule, **cfg.mc})
        return label_monte_carlo(problems, rollouts, _verdicts(cfg, problems, rollouts), model, tok, mc,
                                 out_dir=out / "mc")
    if cfg.source == "prm":
        from negrl.steps.prm import PRMScorer

        if not cfg.prm_model:
            raise ValueError("source 'prm' needs prm_model (a directory written by PRMScorer.save_pretrained)")
        return PRMScorer.from_pretrained(cfg.prm_model, threshold=cfg.prm_threshold).label(problems, rollouts, cfg.rule)
    if cfg.source == "judge":
        from negrl.modeling import load_policy
        from negrl.steps.judge import HTTPJudge, LLMJudge

        if cfg.judge_url:
            judge: Any = HTTPJudge(cfg.judge_url, model=cfg.judge_model or "default")
        elif cfg.judge_model:
            judge = LLMJudge(*load_policy(cfg.judge_model), max_new_tokens=cfg.judge_max_new_tokens)
        else:
            raise ValueError("source 'judge' needs judge_model (a model directory, id or 'smollm2') or judge_url")
        return judge.label(problems, rollouts, rule=cfg.rule)
    from negrl.steps.consensus import combine_labels

    if len(cfg.consensus_inputs) < 2:
        raise ValueError("source 'consensus' needs at least two finished label stages in consensus_inputs")
    return combine_labels([read_stage(p, StepLabels) for p in cfg.consensus_inputs], cfg.consensus_rule)


def run_label_steps(cfg: LabelStepsConfig) -> list[StepLabels]:
    """Label the rollouts and write ``output_dir/labels`` (a StepLabels stage) and the resolved ``config.json``."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2), encoding="utf-8")
    problems: list[Problem] = read_stage(cfg.problems, Problem) if cfg.source != "consensus" else []
    rollouts: list[Rollout] = read_stage(cfg.rollouts, Rollout) if cfg.source != "consensus" else []
    labels = _label(cfg, problems, rollouts, out)
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate every process holds the gathered labels
        write_stage(out / "labels", labels, StepLabels, config={"source": cfg.source})
    return labels
