"""Preference rows (TRL ``prompt`` / ``chosen`` / ``rejected``): per-step DPO (Setlur et al. 2024) and outcome DPO.

Input: the pipeline's records joined on ids — ``Problem``, ``Rollout``, ``Verdict`` and (Monte-Carlo) ``StepLabels``.
Output: ``datasets.Dataset`` rows in TRL's column vocabulary, plus a few bookkeeping columns (the prompt-completion
rows of RFT and AWR are ``negrl.builders.prompt_completion``):

| builder | TRL columns | extra columns |
| --- | --- | --- |
| ``step_dpo_pairs`` (format ``"paper"``) | ``prompt``, ``chosen``, ``rejected`` | ``chosen_eos``, ``rejected_eos``, ``problem_id``, ``rejected_id``, ``critical_step`` |
| ``step_dpo_pairs`` (format ``"shared_prefix"``) | same | same |
| ``outcome_dpo_pairs`` | same | same (``critical_step = -1``) |

``chosen_eos`` / ``rejected_eos`` say whether the text *ends the solution*, i.e. whether the trainer appends EOS
(``negrl.trainers.step_dpo.StepDPOTrainer`` reads them; TRL's own ``DPOTrainer`` would append EOS to both).

Pair formats (Setlur et al. 2024, arXiv 2406.14532: per-step DPO and Theorem 6.1):

- ``"paper"`` (Setlur et al.; default): prompt = the problem, chosen = a verified-correct self-sample of the same
  problem (with EOS), rejected = the negative truncated right after its critical step ``first_error``, **no EOS**.
  (The paper's positives are teacher solutions; post-training here sees only prompts + the verifier, so the chosen
  side is the policy's own correct sample.)
- ``"shared_prefix"`` (Theorem 6.1 / Self-Explore ``form_gpair``): prompt = problem + the negative's steps before the
  pit, chosen = a correct continuation from that prefix, rejected = the pit step alone (no EOS unless the pit is the
  last step of a completed sample). Continuations come from ``continuations[(problem_id, prefix)]`` when given (e.g.
  kept by a Monte-Carlo stage); otherwise from the same problem's correct rollouts that start with the same prefix
  (always available at the prompt, i.e. for a pit at step 0; deeper pits find one only when samples share steps).

A chosen text that starts with the rejected text (the "pit" is a prefix of a correct solution: a Monte-Carlo false
negative) yields no pair; ``BuildStats`` counts every reason a negative was dropped.

Generated token ids (``tokenizer=`` given): every side is then built from the rollouts' ``completion_ids`` rather than
from text cut at character offsets (which a byte-level BPE tokenizer re-encodes into tokens the policy never
generated), and the rows get three more columns, read by ``StepDPOTrainer``:

- ``rejected_token_ids``: the negative's generated ids cut on the largest token boundary inside its critical step
  (``negrl.builders.groups.GeneratedTokens``, the Monte-Carlo cut); in the shared-prefix format the ids after the
  prefix's own cut. ``rejected`` is their decoded text, so it may stop a few characters before the step's end when a
  token straddles it; a pit with no token boundary past its start gives no pair (``"pit_inside_token"``);
- ``chosen_token_ids``: a correct sample's generated ids (shared prefix: those after its token boundary at the
  prefix; a sample with no token boundary there is no candidate);
- ``prompt_token_ids``: shared prefix only, the prompt's ids + the negative's generated prefix ids.

A column holds ``None`` where the row has no ids for that side: a rollout without ``completion_ids`` (records written
before ids were kept, or ids that do not decode to the completion), a Monte-Carlo continuation (``StepLabels`` keeps
its text only), the prompt of a paper-format row. The trainer encodes that side's text, as without a tokenizer.
Without ``tokenizer`` the rows and their columns are exactly the text rows above.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from negrl.builders.groups import BuildStats, GeneratedTokens, PromptFn, RolloutGroup, group_rollouts, unique_texts
from negrl.generation.config import encode_prompts
from negrl.records import Problem, Rollout, StepLabels, Verdict


PAIR_COLUMNS = ["prompt", "chosen", "rejected", "chosen_eos", "rejected_eos", "problem_id", "rejected_id",
                "critical_step"]
TOKEN_ID_COLUMNS = ["prompt_token_ids", "chosen_token_ids", "rejected_token_ids"]  # with a tokenizer only


@dataclass
class PairConfig:
    """Knobs of the preference-pair builders.

    Attributes:
        format: ``"paper"`` or ``"shared_prefix"`` (see the module docstring); ignored by ``outcome_dpo_pairs``.
        negatives_per_problem: Most pairs per problem (paper: 8 negatives per question); ``None`` = all.
        chosen: How the chosen solution is picked among the candidates: ``"random"``, ``"shortest"`` (Self-Explore)
            or ``"first"`` (lowest sample index).
        drop_without_pit: Drop negatives whose labels have no critical step (``first_error is None``); otherwise
            they are used whole (with EOS), like an outcome-level negative.
        dedup: Keep one pair per unique (prompt, rejected) text before capping.
        truncated_chosen: A correct sample cut by the token limit (``finish_reason="length"``) as a chosen side:
            ``"drop"`` (default: a chosen side is a solution the policy ended; EOS after a cut text would teach it to
            stop where it never did) or ``"eos"`` (used with EOS appended, as negrl did before).
        seed: Seed of the random choices (per problem, so adding problems does not change other problems' pairs).
    """

    format: str = "paper"
    negatives_per_problem: int | None = 8
    chosen: str = "random"
    drop_without_pit: bool = True
    dedup: bool = True
    truncated_chosen: str = "drop"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.format not in ("paper", "shared_prefix"):
            raise ValueError(f"PairConfig.format must be 'paper' or 'shared_prefix', got {self.format!r}")
        if self.chosen not in ("random", "shortest", "first"):
            raise ValueError(f"PairConfig.chosen must be 'random', 'shortest' or 'first', got {self.chosen!r}")
        if self.truncated_chosen not in ("drop", "eos"):
            raise ValueError(f"PairConfig.truncated_chosen must be 'drop' or 'eos', got {self.truncated_chosen!r}")
        if self.negatives_per_problem is not None and self.negatives_per_problem < 1:
            raise ValueError(f"PairConfig.negatives_per_problem must be >= 1 or None, got {self.negatives_per_problem}")


def _pick(candidates: list[str], how: str, rng: random.Random) -> str:
    if how == "shortest":
        return min(candidates, key=len)
    if how == "first":
        return candidates[0]
    return rng.choice(candidates)


@dataclass
class _Negative:
    """The rejected side of a wrong rollout: text added to the prompt, the rejected text, its EOS flag and critical
    step (-1 = whole), and their generated ids (``None``: built from text)."""

    prefix: str
    rejected: str
    eos: bool
    critical_step: int
    prefix_ids: list[int] | None = None
    rejected_ids: list[int] | None = None


def _negative(rollout: Rollout, labels: StepLabels | None, cfg: PairConfig,
              tokens: GeneratedTokens | None) -> _Negative | str:
    """The rejected side of a wrong rollout, or the reason it gives no pair (see the module docstring)."""
    text, finished = rollout.completion, rollout.finish_reason == "stop"
    if labels is None or labels.first_error is None:
        if cfg.drop_without_pit:
            return "no_pit"
        return _Negative("", text, finished, -1, None, _whole_ids(rollout, tokens))
    c = labels.first_error
    if not 0 <= c < len(labels.steps):
        raise ValueError(f"StepLabels {labels.rollout_id!r}: first_error={c} but {len(labels.steps)} steps")
    start, end = labels.steps[c].start, labels.steps[c].end
    head = tokens.cut(rollout, start) if tokens else None
    tail = tokens.cut(rollout, end) if head else None
    shared = cfg.format == "shared_prefix"
    if head is None or tail is None:  # text rows (no usable generated ids)
        prefix = text[:start] if shared else ""
        return _Negative(prefix, text[len(prefix):end], end >= len(text.rstrip()) and finished, c)
    if len(tail.ids) <= len(head.ids):
        return "pit_inside_token"  # no token boundary between the pit's start and end: no pit token to reject
    n = len(head.ids) if shared else 0
    prefix = head.text if shared else ""
    return _Negative(prefix, tail.text[len(prefix):], len(tail.text) >= len(text.rstrip()) and finished, c,
                     tail.ids[:n], tail.ids[n:])


def _select(rows: list[dict[str, Any]], cfg: PairConfig, rng: random.Random) -> list[dict[str, Any]]:
    """Dedup on (prompt, rejected) and cap at ``negatives_per_problem`` (a seeded random subset)."""
    if cfg.dedup:
        rows = list({(r["prompt"], r["rejected"]): r for r in reversed(rows)}.values())[::-1]
    if cfg.negatives_per_problem is not None and len(rows) > cfg.negatives_per_problem:
        keep = sorted(rng.sample(range(len(rows)), cfg.negatives_per_problem))
        rows = [rows[i] for i in keep]
    return rows


def _chosen_pool(group: RolloutGroup, cfg: PairConfig) -> list[Rollout]:
    """The correct self-samples that may be a chosen side (see ``PairConfig.truncated_chosen``), one per text."""
    first: dict[str, Rollout] = {}
    for r in group.correct:
        if cfg.truncated_chosen == "eos" or r.finish_reason == "stop":
            first.setdefault(r.completion, r)
    return list(first.values())


Candidate = tuple[str, list[int] | None]  # a chosen text and its generated ids (None: encode the text)


def _whole_ids(rollout: Rollout, tokens: GeneratedTokens | None) -> list[int] | None:
    """All generated ids of a rollout, or ``None`` (no tokenizer, or no usable ids)."""
    return list(rollout.completion_ids or []) if tokens is not None and tokens.usable(rollout) else None


def _candidates(correct: list[Rollout], prefix: str, tokens: GeneratedTokens | None) -> list[Candidate]:
    """Continuations of ``prefix`` among the correct samples; with ids, only samples with a token boundary there."""
    out: list[Candidate] = []
    for r in correct:
        if not r.completion.startswith(prefix) or len(r.completion) == len(prefix):
            continue
        head = tokens.cut(r, len(prefix)) if tokens else None
        if head is None:
            out.append((r.completion[len(prefix):], None))
        elif head.text == prefix:  # else a token straddles the prefix end: no generated tokens start there
            out.append((r.completion[len(prefix):], list(r.completion_ids or [])[len(head.ids):]))
    return out


def _pair(prompt: str, chosen: str, rejected: str, rejected_eos: bool, problem_id: str, rid: str, c: int) -> dict:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "chosen_eos": True,
            "rejected_eos": rejected_eos, "problem_id": problem_id, "rejected_id": rid, "critical_step": c}


def _with_ids(row: dict[str, Any], tokens: GeneratedTokens | None, prompt: str, neg: _Negative,
              chosen_ids: list[int] | None) -> dict[str, Any]:
    """Add the ``TOKEN_ID_COLUMNS`` to a row when a tokenizer was given (see the module docstring)."""
    if tokens is None:
        return row
    prompt_ids = None
    if neg.prefix_ids:  # the prompt as generation encoded it, then the ids the policy generated after it
        prompt_ids = encode_prompts([prompt], tokens.tokenizer)[0] + neg.prefix_ids
    return {**row, "prompt_token_ids": prompt_ids, "chosen_token_ids": chosen_ids, "rejected_token_ids": neg.rejected_ids}


def _pairs_dataset(rows: list[dict[str, Any]], with_ids: bool) -> Dataset:
    columns = PAIR_COLUMNS + (TOKEN_ID_COLUMNS if with_ids else [])
    return Dataset.from_dict({k: [r[k] for r in rows] for k in columns})


def _step_pairs_of_group(
    g: RolloutGroup, labels: dict[str, StepLabels], cfg: PairConfig, prompt: str,
    continuations: dict[tuple[str, str], list[str]] | None, stats: BuildStats, tokens: GeneratedTokens | None,
) -> list[dict[str, Any]]:
    rng = random.Random(f"{cfg.seed}/{g.problem.problem_id}")
    correct = _chosen_pool(g, cfg)
    rows = []
    for r in g.wrong:
        neg = _negative(r, labels.get(r.rollout_id), cfg, tokens)
        if isinstance(neg, str):
            stats.drop(neg)
            continue
        pool = _candidates(correct, neg.prefix, tokens)
        pool += [(t, None) for t in (continuations or {}).get((g.problem.problem_id, neg.prefix), [])]
        if not pool:
            stats.drop("no_chosen")
            continue
        ids_of = {t: ids for t, ids in reversed(pool)}  # the first candidate of each text
        texts = [t for t in unique_texts([t for t, _ in pool]) if not t.startswith(neg.rejected)]
        if not texts:
            stats.drop("chosen_extends_rejected")  # the "pit" starts a correct solution: a Monte-Carlo false negative
            continue
        chosen = _pick(texts, cfg.chosen, rng)
        row = _pair(prompt + neg.prefix, chosen, neg.rejected, neg.eos, g.problem.problem_id, r.rollout_id,
                    neg.critical_step)
        rows.append(_with_ids(row, tokens, prompt, neg, ids_of[chosen]))
    return _select(rows, cfg, rng)


def step_dpo_pairs(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    step_labels: Sequence[StepLabels],
    config: PairConfig | None = None,
    prompt_fn: PromptFn | None = None,
    continuations: dict[tuple[str, str], list[str]] | None = None,
    stats: BuildStats | None = None,
    tokenizer: Any = None,
) -> Dataset:
    """Per-step DPO pairs (critical-step-truncated negatives), in the ``"paper"`` or ``"shared_prefix"`` format.

    Args:
        step_labels: Labels of (at least) the wrong rollouts; ``first_error`` is the critical step.
        prompt_fn: The text the policy was prompted with (default ``problem.prompt``; pass the chat-formatted
            prompt for instruct models so training sees what generation saw).
        continuations: Optional ``(problem_id, prefix_text) -> correct continuations`` (e.g. the Monte-Carlo ones,
            ``negrl.steps.monte_carlo.mc_continuations``), added to the correct self-samples that extend the prefix.
        stats: Filled with kept/dropped counts when given.
        tokenizer: The policy's tokenizer: build every side from the rollouts' generated ids and add the
            ``TOKEN_ID_COLUMNS`` (module docstring); ``None`` = text rows only.
    """
    cfg = config or PairConfig()
    stats = stats if stats is not None else BuildStats()
    tokens = GeneratedTokens(tokenizer) if tokenizer is not None else None
    labels = {sl.rollout_id: sl for sl in step_labels}
    rows: list[dict[str, Any]] = []
    for g in group_rollouts(problems, rollouts, verdicts):
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        rows.extend(_step_pairs_of_group(g, labels, cfg, prompt, continuations, stats, tokens))
    stats.kept = len(rows)
    return _pairs_dataset(rows, tokens is not None)


def outcome_dpo_pairs(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    config: PairConfig | None = None,
    prompt_fn: PromptFn | None = None,
    stats: BuildStats | None = None,
    tokenizer: Any = None,
) -> Dataset:
    """Outcome-level DPO baseline: chosen = a correct self-sample, rejected = a whole wrong sample (with EOS).

    One pair per (unique) wrong rollout of a problem that has a correct one, capped and picked like the step pairs.
    A wrong sample cut by the token limit (``finish_reason="length"``) gets no EOS: it did not end. ``tokenizer``:
    both sides carry their generated ids, as in ``step_dpo_pairs``.
    """
    cfg = config or PairConfig()
    stats = stats if stats is not None else BuildStats()
    tokens = GeneratedTokens(tokenizer) if tokenizer is not None else None
    rows: list[dict[str, Any]] = []
    for g in group_rollouts(problems, rollouts, verdicts):
        rng = random.Random(f"{cfg.seed}/{g.problem.problem_id}")
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        correct = {r.completion: _whole_ids(r, tokens) for r in _chosen_pool(g, cfg)}
        group_rows = []
        for r in g.wrong:
            if not correct:
                stats.drop("no_chosen")
                continue
            chosen = _pick(list(correct), cfg.chosen, rng)
            neg = _Negative("", r.completion, r.finish_reason == "stop", -1, None, _whole_ids(r, tokens))
            row = _pair(prompt, chosen, r.completion, neg.eos, g.problem.problem_id, r.rollout_id, -1)
            group_rows.append(_with_ids(row, tokens, prompt, neg, correct[chosen]))
        rows.extend(_select(group_rows, cfg, rng))
    stats.kept = len(rows)
    return _pairs_dataset(rows, tokens is not None)
