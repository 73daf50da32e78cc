"""Prompt-completion rows (TRL ``prompt`` / ``completion``): rejection fine-tuning and advantage-weighted RL.

| builder | TRL columns | extra columns |
| --- | --- | --- |
| ``rft_rows`` | ``prompt``, ``completion`` | ``problem_id`` (+ ``completion_ids`` with a tokenizer) |
| ``awr_rows`` | ``prompt``, ``completion`` | ``spans`` (``[start, end, advantage]`` in completion chars), ``add_eos``, ``problem_id``, ``correct`` (+ ``completion_ids`` with a tokenizer) |

The preference rows (per-step and outcome DPO) are ``negrl.builders.preference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from negrl.builders.groups import BuildStats, GeneratedTokens, PromptFn, group_rollouts, unique_texts
from negrl.records import Problem, Rollout, StepLabels, Verdict


def rft_rows(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    dedup: bool = True,
    max_per_problem: int | None = None,
    prompt_fn: PromptFn | None = None,
    tokenizer: Any = None,
) -> Dataset:
    """Rejection fine-tuning rows: the policy's own verified-correct samples as ``prompt`` / ``completion``.

    Rows carry ``add_eos``: a sample that finished (EOS or a stop string) is trained with EOS; a correct sample cut by
    ``max_new_tokens`` is trained without it (the policy never stopped there). ``dedup`` keeps each (prompt, completion) once; ``max_per_problem``
    caps the rows per problem (first by sample index). ``tokenizer``: rows get a ``completion_ids`` column, the
    sample's generated ids (the first sample of each text; ``None`` for a rollout without usable ids), for a
    tokenisation that trains the generated tokens (``tokenize_weighted(..., completion_ids=...)``).
    """
    tokens = GeneratedTokens(tokenizer) if tokenizer is not None else None
    prompts, completions, pids, gen_ids, eos = [], [], [], [], []
    for g in group_rollouts(problems, rollouts, verdicts):
        first: dict[str, Rollout] = {}
        for r in g.correct:
            first.setdefault(r.completion, r)
        texts = [r.completion for r in g.correct]
        texts = unique_texts(texts) if dedup else texts
        texts = texts[:max_per_problem] if max_per_problem is not None else texts
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        prompts += [prompt] * len(texts)
        completions += texts
        pids += [g.problem.problem_id] * len(texts)
        eos += [first[t].finish_reason == "stop" for t in texts]
        if tokens is not None:
            gen_ids += [list(first[t].completion_ids or []) if tokens.usable(first[t]) else None for t in texts]
    columns = {"prompt": prompts, "completion": completions, "problem_id": pids, "add_eos": eos}
    return Dataset.from_dict({**columns, "completion_ids": gen_ids} if tokens is not None else columns)


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


def _spans(labels: StepLabels | None, upto: int | None = None, n_chars: int | None = None) -> list[list[float]]:
    """``[start, end, advantage]`` of each step (steps ``<= upto``, ends clipped to ``n_chars``); unknown advantages
    (``None``) become 0."""
    if labels is None:
        return []
    advantages = labels.advantages
    n = len(labels.steps) if upto is None else upto + 1
    limit = n_chars if n_chars is not None else max((s.end for s in labels.steps), default=0)
    return [[float(s.start), float(min(s.end, limit)), float(a or 0.0)]
            for s, a in zip(labels.steps[:n], advantages[:n])]  # fmt: skip


_Row = tuple[str, list[int] | None, bool, list[list[float]]]  # completion, its generated ids, add_eos, spans


def _awr_row(r: Rollout, ok: bool, sl: StepLabels | None, cfg: AWRRowConfig,
             tokens: GeneratedTokens | None) -> _Row | str:
    """What one rollout contributes (see ``awr_rows``), or the reason it is dropped."""
    whole_ids = list(r.completion_ids or []) if tokens is not None and tokens.usable(r) else None
    whole: _Row = (r.completion, whole_ids, r.finish_reason == "stop", _spans(sl))
    if ok:
        return whole
    if sl is None or sl.first_error is None:
        return "no_pit" if cfg.drop_without_pit else whole
    if not cfg.truncate_negatives:
        return whole
    c = sl.first_error
    head = tokens.cut(r, sl.steps[c].start) if tokens is not None else None
    tail = tokens.cut(r, sl.steps[c].end) if head is not None else None
    if head is None or tail is None:  # text rows (no usable generated ids)
        return r.completion[: sl.steps[c].end], None, False, _spans(sl, upto=c)
    if len(tail.ids) <= len(head.ids):
        return "pit_inside_token"  # no token boundary between the pit's start and end: no pit token left
    return tail.text, tail.ids, False, _spans(sl, upto=c, n_chars=len(tail.text))


def awr_rows(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    step_labels: Sequence[StepLabels],
    config: AWRRowConfig | None = None,
    prompt_fn: PromptFn | None = None,
    stats: BuildStats | None = None,
    tokenizer: Any = None,
) -> Dataset:
    """Rows of advantage-weighted RL: positive and negative rollouts with per-step advantages as character spans.

    Each row is ``prompt``, ``completion``, ``spans`` (``[start, end, A_i]`` in completion characters, with
    ``A_i = V_i - V_{i-1}`` from ``StepLabels.advantages``; characters outside every span have advantage 0),
    ``add_eos`` (whether the completion ends the solution), ``problem_id`` and ``correct``.
    ``negrl.completion_tokens.tokenize_weighted`` maps the spans to per-token advantages.

    ``tokenizer`` (the policy's): rows get a ``completion_ids`` column, the rollout's generated ids — for a truncated
    negative cut on the largest token boundary inside its critical step (``negrl.builders.groups.GeneratedTokens``,
    the Monte-Carlo cut; ``completion`` is then their decoded text and the pit's span ends there; a pit with no
    token boundary past its start drops the rollout, ``"pit_inside_token"``) — so that training sees the tokens the
    policy generated, not a re-encoding of cut text. ``None`` in that column (a rollout without ``completion_ids``,
    e.g. records written before ids were kept) keeps the text row; without ``tokenizer`` the rows are exactly the
    text rows.
    """
    cfg = config or AWRRowConfig()
    stats = stats if stats is not None else BuildStats()
    tokens = GeneratedTokens(tokenizer) if tokenizer is not None else None
    labels = {sl.rollout_id: sl for sl in step_labels}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    serial = 0
    for g in group_rollouts(problems, rollouts, verdicts):
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        items = [(r, True) for r in g.correct] if cfg.include_positives else []
        items += [(r, False) for r in g.wrong]
        for r, ok in items:
            got = _awr_row(r, ok, labels.get(r.rollout_id), cfg, tokens)
            if isinstance(got, str):
                stats.drop(got)
                continue
            text, ids, eos, spans = got
            key = (prompt, text) if cfg.dedup else (prompt, str(serial))
            serial += 1
            rows.setdefault(key, {"prompt": prompt, "completion": text, "spans": spans, "add_eos": eos,
                                  "problem_id": g.problem.problem_id, "correct": ok, "completion_ids": ids})
    stats.kept = len(rows)
    columns = ["prompt", "completion", "spans", "add_eos", "problem_id", "correct"]
    columns += ["completion_ids"] if tokens is not None else []
    return Dataset.from_dict({k: [r[k] for r in rows.values()] for k in columns})
