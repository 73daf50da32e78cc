"""Prompt-completion rows (TRL ``prompt`` / ``completion``): rejection fine-tuning and advantage-weighted RL.

| builder | TRL columns | extra columns |
| --- | --- | --- |
| ``rft_rows`` | ``prompt``, ``completion`` | ``problem_id`` |
| ``awr_rows`` | ``prompt``, ``completion`` | ``spans`` (``[start, end, advantage]`` in completion chars), ``add_eos``, ``problem_id``, ``correct`` |

The preference rows (per-step and outcome DPO) are ``negrl.builders.preference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from negrl.builders.groups import BuildStats, PromptFn, group_rollouts, unique_texts
from negrl.records import Problem, Rollout, StepLabels, Verdict


def rft_rows(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    dedup: bool = True,
    max_per_problem: int | None = None,
    prompt_fn: PromptFn | None = None,
) -> Dataset:
    """Rejection fine-tuning rows: the policy's own verified-correct samples as ``prompt`` / ``completion``.

    ``SFTTrainer`` appends EOS to each completion. ``dedup`` keeps each (prompt, completion) once; ``max_per_problem``
    caps the rows per problem (first by sample index).
    """
    prompts, completions, ids = [], [], []
    for g in group_rollouts(problems, rollouts, verdicts):
        texts = [r.completion for r in g.correct]
        texts = unique_texts(texts) if dedup else texts
        texts = texts[:max_per_problem] if max_per_problem is not None else texts
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        prompts += [prompt] * len(texts)
        completions += texts
        ids += [g.problem.problem_id] * len(texts)
    return Dataset.from_dict({"prompt": prompts, "completion": completions, "problem_id": ids})


@dataclass
class AWRRowConfig:
    """Knobs of ``awr_rows``.

    Attributes:
        truncate_negatives: Cut a wrong rollout right after its critical step (no EOS), as the per-step DPO pairs do;
            the tokens after the pit carry no advantage estimate (the Monte-Carlo stage stops at the first pit).
        drop_without_pit: Drop wrong rollouts whose labels have no critical step (else use them whole).
        include_positives: Add the verified-correct rollouts (with EOS); their unlabelled steps get advantage 0.
        dedup: Keep one row per unique (prompt, completion).
    """

    truncate_negatives: bool = True
    drop_without_pit: bool = True
    include_positives: bool = True
    dedup: bool = True


def _spans(labels: StepLabels | None, upto: int | None = None) -> list[list[float]]:
    """``[start, end, advantage]`` of each step (steps ``<= upto``); unknown advantages (``None``) become 0."""
    if labels is None:
        return []
    advantages = labels.advantages
    n = len(labels.steps) if upto is None else upto + 1
    return [[float(s.start), float(s.end), float(a or 0.0)] for s, a in zip(labels.steps[:n], advantages[:n])]


def awr_rows(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    step_labels: Sequence[StepLabels],
    config: AWRRowConfig | None = None,
    prompt_fn: PromptFn | None = None,
    stats: BuildStats | None = None,
) -> Dataset:
    """Rows of advantage-weighted RL: positive and negative rollouts with per-step advantages as character spans.

    Each row is ``prompt``, ``completion``, ``spans`` (``[start, end, A_i]`` in completion characters, with
    ``A_i = V_i - V_{i-1}`` from ``StepLabels.advantages``; characters outside every span have advantage 0),
    ``add_eos`` (whether the completion ends the solution), ``problem_id`` and ``correct``.
    ``negrl.completion_tokens.tokenize_weighted`` maps the spans to per-token advantages.
    """
    cfg = config or AWRRowConfig()
    stats = stats if stats is not None else BuildStats()
    labels = {sl.rollout_id: sl for sl in step_labels}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    serial = 0
    for g in group_rollouts(problems, rollouts, verdicts):
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        items = [(r, True) for r in g.correct] if cfg.include_positives else []
        items += [(r, False) for r in g.wrong]
        for r, ok in items:
            sl = labels.get(r.rollout_id)
            if ok:
                text, eos, spans = r.completion, r.finish_reason == "stop", _spans(sl)
            elif sl is None or sl.first_error is None:
                if cfg.drop_without_pit:
                    stats.drop("no_pit")
                    continue
                text, eos, spans = r.completion, r.finish_reason == "stop", _spans(sl)
            elif cfg.truncate_negatives:
                c = sl.first_error
                text, eos, spans = r.completion[: sl.steps[c].end], False, _spans(sl, upto=c)
            else:
                text, eos, spans = r.completion, r.finish_reason == "stop", _spans(sl)
            key = (prompt, text) if cfg.dedup else (prompt, str(serial))
            serial += 1
            rows.setdefault(key, {"prompt": prompt, "completion": text, "spans": spans, "add_eos": eos,
                                  "problem_id": g.problem.problem_id, "correct": ok})
    stats.kept = len(rows)
    columns = ["prompt", "completion", "spans", "add_eos", "problem_id", "correct"]
    return Dataset.from_dict({k: [r[k] for r in rows.values()] for k in columns})
