"""The one step-label dispatcher: ``mc | prm | judge | oracle | consensus`` → ``StepLabels``, cached by settings.

    labels = label_steps("consensus", problems, rollouts, verdicts, LabelSettings(consensus_sources=["mc", "prm"],
                         prm_model="runs/prm", mc=MonteCarloConfig(k=4)), model, tokenizer, cache_dir=out)

Sources:

- ``mc``: Monte-Carlo values of step prefixes with ``model`` as the rollout policy (``negrl.steps.monte_carlo``);
- ``prm``: a PRM (``prm_model``: saved by ``PRMScorer.save_pretrained``, or an off-the-shelf one such as
  Qwen2.5-Math-PRM or a Math-Shepherd PRM with ``prm_options``, see ``negrl.steps.prm``), thresholded at
  ``prm_threshold``;
- ``judge``: an LLM judge: ``judge_url`` (OpenAI-compatible endpoint), else ``judge_model`` (a directory, hub id or
  ``"smollm2"``), else ``model`` itself;
- ``oracle``: the exact step checker of the embedded tasks (ablations only: real tasks have none);
- ``consensus``: ``combine_labels`` of ``consensus_sources`` under ``consensus_rule`` (``and`` in BCPG-NSA).

With ``cache_dir``, each source's labels are the stage ``cache_dir/labels-{source}-{digest}``, the digest being of
``source_settings`` (the settings that decide the labels and the rollouts' ids), so a changed setting relabels
instead of reusing stale labels. Not in the key: the *contents* of a model directory retrained in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.io import cached_stage, ids_digest
from negrl.records import Problem, Rollout, StepLabels, Verdict


SOURCES = ("mc", "prm", "judge", "oracle")
LABEL_SOURCES = (*SOURCES, "consensus")


@dataclass
class LabelSettings:
    """How each source labels (only the fields of the sources used matter).

    Attributes:
        segment_rule: ``negrl.steps.segment`` rule for the prm / judge / oracle sources (``mc`` has its own).
        mc: ``MonteCarloConfig`` of the ``mc`` source (default ``MonteCarloConfig(segment_rule=segment_rule)``).
        prm_model / prm_threshold: the PRM directory or hub id and λ (``None``: the threshold saved with the PRM).
        prm_options: keyword options of ``PRMScorer.from_pretrained`` (``family``, ``PRMFormat`` fields such as
            ``trust_remote_code``); part of the stage key only when given.
        judge_model / judge_url / judge_max_new_tokens: the judge (see the module docstring); ``None`` tokens =
            ``LLMJudge``'s default.
        consensus_sources / consensus_rule: what ``consensus`` combines, and how.
    """

    segment_rule: str = "lines"
    mc: Any = None
    prm_model: str | None = None
    prm_threshold: float | None = None
    prm_options: dict[str, Any] | None = None
    judge_model: str | None = None
    judge_url: str | None = None
    judge_max_new_tokens: int | None = None
    consensus_sources: list[str] = field(default_factory=lambda: ["judge", "prm"])
    consensus_rule: str = "and"

    def mc_config(self) -> Any:
        from negrl.steps.monte_carlo import MonteCarloConfig

        return self.mc if self.mc is not None else MonteCarloConfig(segment_rule=self.segment_rule)


def _oracle(problems, rollouts, verdicts, s: LabelSettings, model, tokenizer, mc_dir) -> list[StepLabels]:
    from negrl.steps.judge import OracleJudge

    return OracleJudge().label(problems, rollouts, rule=s.segment_rule)


def _mc(problems, rollouts, verdicts, s: LabelSettings, model, tokenizer, mc_dir) -> list[StepLabels]:
    from negrl.steps.monte_carlo import label_monte_carlo

    if model is None:
        raise ValueError("label source 'mc' needs the rollout policy (model and tokenizer)")
    if verdicts is None:
        from negrl.verifiers import verify_rollouts

        verdicts = verify_rollouts(list(problems), list(rollouts))
    return label_monte_carlo(list(problems), list(rollouts), list(verdicts), model, tokenizer, s.mc_config(),
                             out_dir=mc_dir)


def _prm(problems, rollouts, verdicts, s: LabelSettings, model, tokenizer, mc_dir) -> list[StepLabels]:
    from negrl.steps.prm import PRMScorer

    if not s.prm_model:
        raise ValueError("label source 'prm' needs prm_model (a PRMScorer.save_pretrained directory or a PRM id)")
    scorer = PRMScorer.from_pretrained(s.prm_model, threshold=s.prm_threshold, **(s.prm_options or {}))
    return scorer.label(problems, rollouts, rule=s.segment_rule)


def _judge(problems, rollouts, verdicts, s: LabelSettings, model, tokenizer, mc_dir) -> list[StepLabels]:
    from negrl.steps.judge import HTTPJudge, LLMJudge

    if s.judge_url:
        judge: Any = HTTPJudge(s.judge_url, model=s.judge_model or "default")
    else:
        if s.judge_model:
            from negrl.modeling import load_policy

            model, tokenizer = load_policy(s.judge_model)
        elif model is None:
            raise ValueError("label source 'judge' needs judge_model (a model directory, id or 'smollm2'), "
                             "judge_url, or a policy to judge with")
        extra = {} if s.judge_max_new_tokens is None else {"max_new_tokens": s.judge_max_new_tokens}
        judge = LLMJudge(model, tokenizer, **extra)
    return judge.label(problems, rollouts, rule=s.segment_rule)


LABELERS: dict[str, Callable[..., list[StepLabels]]] = {"oracle": _oracle, "mc": _mc, "prm": _prm, "judge": _judge}


def source_settings(source: str, settings: LabelSettings, rollouts: Sequence[Rollout]) -> dict[str, Any]:
    """The settings that decide a source's labels of ``rollouts``: the key of its cached stage."""
    s = settings
    if source == "mc":
        mc = s.mc_config()
        own: dict[str, Any] = {"mc_k": mc.k, "max_new_tokens": mc.max_new_tokens, "seed": mc.seed,
                               "use_chat_template": mc.use_chat_template}
    elif source == "prm":
        own = {"prm_model": s.prm_model, "prm_threshold": s.prm_threshold}
        if s.prm_options:  # absent otherwise, so the keys of existing label stages stay as they were
            own["prm_options"] = dict(s.prm_options)
    elif source == "judge":
        own = {"judge_model": s.judge_model or "<the policy>"}
        if s.judge_url:
            own["judge_url"] = s.judge_url
    else:
        own = {}
    return {"source": source, "segment_rule": s.segment_rule, "n": len(rollouts),
            "rollouts": ids_digest(r.rollout_id for r in rollouts), **own}


def stage_name(source: str, settings: dict[str, Any]) -> str:
    """``labels-{source}-{digest of its settings}``: sources with other settings never share a stage."""
    return f"labels-{source}-{ids_digest([json.dumps(settings, sort_keys=True)])}"


def label_source(source: str, problems: Sequence[Problem], rollouts: Sequence[Rollout],
                 verdicts: Sequence[Verdict] | None, settings: LabelSettings, model: Any = None, tokenizer: Any = None,
                 *, cache_dir: str | Path | None = None, mc_dir: str | Path | None = None) -> list[StepLabels]:
    """Labels of one source (not ``consensus``); cached as ``cache_dir/labels-{source}-{digest}`` when given.

    ``mc_dir``: where the ``mc`` source keeps its resumable work units (default: next to its cached stage).
    """
    if source not in LABELERS:
        raise ValueError(f"unknown label source {source!r}; expected one of {list(LABELERS)}")
    key = source_settings(source, settings, rollouts)
    name = stage_name(source, key)
    if mc_dir is None and cache_dir is not None:
        mc_dir = Path(cache_dir) / f"{name}-units"

    def run() -> list[StepLabels]:
        return LABELERS[source](problems, rollouts, verdicts, settings, model, tokenizer, mc_dir)

    if cache_dir is None:
        return run()
    return cached_stage(Path(cache_dir) / name, StepLabels, run, key)


def label_steps(source: str, problems: Sequence[Problem], rollouts: Sequence[Rollout],
                verdicts: Sequence[Verdict] | None, settings: LabelSettings, model: Any = None, tokenizer: Any = None,
                *, cache_dir: str | Path | None = None, mc_dir: str | Path | None = None,
                precomputed: Mapping[str, Sequence[StepLabels]] | None = None) -> list[StepLabels]:
    """Step labels of ``rollouts`` from ``source`` (one of ``LABEL_SOURCES``); ``precomputed`` labels (by source
    name) are used as they are, e.g. a pipeline's own Monte-Carlo labels or finished label stages to combine."""
    pre = dict(precomputed or {})

    def one(name: str) -> list[StepLabels]:
        if name in pre:
            return list(pre[name])
        return label_source(name, problems, rollouts, verdicts, settings, model, tokenizer, cache_dir=cache_dir,
                            mc_dir=mc_dir)

    if source != "consensus":
        if source not in LABELERS and source not in pre:
            raise ValueError(f"unknown label source {source!r}; expected one of {list(LABEL_SOURCES)}")
        return one(source)
    from negrl.steps.consensus import combine_labels

    names = list(settings.consensus_sources)
    unknown = [n for n in names if n not in LABELERS and n not in pre]
    if unknown or not names:
        raise ValueError(f"consensus_sources {names} must be a non-empty subset of {list(SOURCES)}")
    return combine_labels([one(n) for n in names], rule=settings.consensus_rule)
