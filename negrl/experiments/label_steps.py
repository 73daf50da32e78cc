"""The step-labelling stage: read problems / rollouts (/ verdicts) stages, label with one source, write StepLabels.

``run_label_steps(LabelStepsConfig(...))`` is what ``recipes/label_steps.py`` runs; the labelling itself is the
library's one dispatcher, ``negrl.steps.sources.label_steps``. Sources: ``"mc"`` (Monte-Carlo
values with the ``policy`` as rollout policy; resumable, and split across processes under ``accelerate launch``),
``"prm"`` (a PRM saved by ``PRMScorer.save_pretrained``), ``"judge"`` (an LLM judge: ``judge_model`` directory,
``"smollm2"``, or an OpenAI-compatible ``judge_url``), ``"oracle"`` (exact checker of embedded tasks), and
``"consensus"`` (combines finished label stages listed in ``consensus_inputs``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.experiments.config import write_resolved_config
from negrl.io import read_stage, write_stage
from negrl.records import Problem, Rollout, StepLabels, Verdict, problems_by_id
from negrl.steps.sources import LABEL_SOURCES as SOURCES
from negrl.steps.sources import LabelSettings, label_steps
from negrl.steps.stepwise import save_stepwise, to_stepwise_dataset


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
    stepwise: str | None = None  # also export the labels as TRL stepwise rows: a save_to_disk directory or *.jsonl

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"LabelStepsConfig.source: {self.source!r} is not one of {SOURCES}")


def _label(cfg: LabelStepsConfig, problems: list[Problem], rollouts: list[Rollout], out: Path) -> list[StepLabels]:
    """One source through the library's dispatcher (``negrl.steps.sources.label_steps``)."""
    settings = LabelSettings(segment_rule=cfg.rule, prm_model=cfg.prm_model, prm_threshold=cfg.prm_threshold,
                             judge_model=cfg.judge_model, judge_url=cfg.judge_url,
                             judge_max_new_tokens=cfg.judge_max_new_tokens, consensus_rule=cfg.consensus_rule)
    model = tokenizer = verdicts = None
    precomputed: dict[str, list[StepLabels]] = {}
    if cfg.source == "mc":
        from negrl.modeling import load_policy
        from negrl.steps.monte_carlo import MonteCarloConfig

        if not cfg.policy:
            raise ValueError("source 'mc' needs policy (the rollout policy directory or id)")
        settings.mc = MonteCarloConfig(**{"segment_rule": cfg.rule, **cfg.mc})
        verdicts = read_stage(cfg.verdicts, Verdict) if cfg.verdicts else None  # checked before the model loads
        model, tokenizer = load_policy(cfg.policy)
    elif cfg.source == "judge" and not (cfg.judge_url or cfg.judge_model):
        raise ValueError("source 'judge' needs judge_model (a model directory, id or 'smollm2') or judge_url")
    elif cfg.source == "consensus":
        if len(cfg.consensus_inputs) < 2:
            raise ValueError("source 'consensus' needs at least two finished label stages in consensus_inputs")
        precomputed = {path: read_stage(path, StepLabels) for path in cfg.consensus_inputs}
        settings.consensus_sources = list(precomputed)
    return label_steps(cfg.source, problems, rollouts, verdicts, settings, model, tokenizer, mc_dir=out / "mc",
                       precomputed=precomputed)


def run_label_steps(cfg: LabelStepsConfig) -> list[StepLabels]:
    """Label the rollouts and write ``output_dir/labels`` (a StepLabels stage) and the resolved ``config.json``."""
    out = Path(cfg.output_dir)
    # Inputs are read and checked (types, rollouts of unknown problems) before a model is loaded or anything is
    # written; the resolved config is written with the labels it produced, never ahead of a run that then fails.
    problems: list[Problem] = read_stage(cfg.problems, Problem) if cfg.source != "consensus" else []
    rollouts: list[Rollout] = read_stage(cfg.rollouts, Rollout) if cfg.source != "consensus" else []
    problems_by_id(problems, rollouts, f"rollouts {cfg.rollouts} vs problems {cfg.problems}")
    labels = _label(cfg, problems, rollouts, out)
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate every process holds the gathered labels
        write_stage(out / "labels", labels, StepLabels, config={"source": cfg.source})
        if cfg.stepwise:
            if not problems:
                raise ValueError("stepwise export needs problems (the prompts); consensus stages have none here")
            save_stepwise(to_stepwise_dataset(problems, labels), cfg.stepwise)
        write_resolved_config(out / "config.json", cfg)
    return labels
