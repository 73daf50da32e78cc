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
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from negrl.builders.groups import BuildStats, PromptFn, RolloutGroup, group_rollouts, unique_texts
from negrl.records import Problem, Rollout, StepLabels, Verdict


PAIR_COLUMNS = ["prompt", "chosen", "rejected", "chosen_eos", "rejected_eos", "problem_id", "rejected_id",
                "critical_step"]


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


def _truncate_at_pit(rollout: Rollout, labels: StepLabels | None, cfg: PairConfig) -> tuple[str, bool, int] | None:
    """The rejected text, whether it ends the solution, and the critical step (-1 = whole); None = drop."""
    if labels is None or labels.first_error is None:
        if cfg.drop_without_pit:
            return None
        return rollout.completion, rollout.finish_reason == "stop", -1
    c = labels.first_error
    if not 0 <= c < len(labels.steps):
        raise ValueError(f"StepLabels {labels.rollout_id!r}: first_error={c} but {len(labels.steps)} steps")
    end = labels.steps[c].end
    ends_solution = end >= len(rollout.completion.rstrip()) and rollout.finish_reason == "stop"
    return rollout.completion[:end], ends_solution, c


def _select(rows: list[dict[str, Any]], cfg: PairConfig, rng: random.Random) -> list[dict[str, Any]]:
    """Dedup on (prompt, rejected) and cap at ``negatives_per_problem`` (a seeded random subset)."""
    if cfg.dedup:
        rows = list({(r["prompt"], r["rejected"]): r for r in reversed(rows)}.values())[::-1]
    if cfg.negatives_per_problem is not None and len(rows) > cfg.negatives_per_problem:
        keep = sorted(rng.sample(range(len(rows)), cfg.negatives_per_problem))
        rows = [rows[i] for i in keep]
    return rows


def _chosen_pool(group: RolloutGroup, cfg: PairConfig) -> list[str]:
    """The correct self-samples that may be a chosen side (see ``PairConfig.truncated_chosen``)."""
    return unique_texts([r.completion for r in group.correct
                         if cfg.truncated_chosen == "eos" or r.finish_reason == "stop"])  # fmt: skip


def _pair(prompt: str, chosen: str, rejected: str, rejected_eos: bool, problem_id: str, rid: str, c: int) -> dict:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "chosen_eos": True,
            "rejected_eos": rejected_eos, "problem_id": problem_id, "rejected_id": rid, "critical_step": c}


def _pairs_dataset(rows: list[dict[str, Any]]) -> Dataset:
    return Dataset.from_dict({k: [r[k] for r in rows] for k in PAIR_COLUMNS})


def _step_pairs_of_group(
    g: RolloutGroup, labels: dict[str, StepLabels], cfg: PairConfig, prompt: str,
    continuations: dict[tuple[str, str], list[str]] | None, stats: BuildStats,
) -> list[dict[str, Any]]:
    rng = random.Random(f"{cfg.seed}/{g.problem.problem_id}")
    correct = _chosen_pool(g, cfg)
    rows = []
    for r in g.wrong:
        cut = _truncate_at_pit(r, labels.get(r.rollout_id), cfg)
        if cut is None:
            stats.drop("no_pit")
            continue
        rejected, rejected_eos, c = cut
        prefix = "" if c < 0 or cfg.format == "paper" else r.completion[: labels[r.rollout_id].steps[c].start]
        if cfg.format == "shared_prefix" and c >= 0:
            rejected = rejected[len(prefix):]
        pool = [t[len(prefix):] for t in correct if t.startswith(prefix) and len(t) > len(prefix)]
        pool += (continuations or {}).get((g.problem.problem_id, prefix), [])
        if not pool:
            stats.drop("no_chosen")
            continue
        pool = [t for t in unique_texts(pool) if not t.startswith(rejected)]
        if not pool:
            stats.drop("chosen_extends_rejected")  # the "pit" starts a correct solution: a Monte-Carlo false negative
            continue
        chosen = _pick(pool, cfg.chosen, rng)
        rows.append(_pair(prompt + prefix, chosen, rejected, rejected_eos, g.problem.problem_id, r.rollout_id, c))
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
) -> Dataset:
    """Per-step DPO pairs (critical-step-truncated negatives), in the ``"paper"`` or ``"shared_prefix"`` format.

    Args:
        step_labels: Labels of (at least) the wrong rollouts; ``first_error`` is the critical step.
        prompt_fn: The text the policy was prompted with (default ``problem.prompt``; pass the chat-formatted
            prompt for instruct models so training sees what generation saw).
        continuations: Optional ``(problem_id, prefix_text) -> correct continuations`` (e.g. the Monte-Carlo ones,
            ``negrl.steps.monte_carlo.mc_continuations``), added to the correct self-samples that extend the prefix.
        stats: Filled with kept/dropped counts when given.
    """
    cfg = config or PairConfig()
    stats = stats if stats is not None else BuildStats()
    labels = {sl.rollout_id: sl for sl in step_labels}
    rows: list[dict[str, Any]] = []
    for g in group_rollouts(problems, rollouts, verdicts):
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        rows.extend(_step_pairs_of_group(g, labels, cfg, prompt, continuations, stats))
    stats.kept = len(rows)
    return _pairs_dataset(rows)


def outcome_dpo_pairs(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    config: PairConfig | None = None,
    prompt_fn: PromptFn | None = None,
    stats: BuildStats | None = None,
) -> Dataset:
    """Outcome-level DPO baseline: chosen = a correct self-sample, rejected = a whole wrong sample (with EOS).

    One pair per (unique) wrong rollout of a problem that has a correct one, capped and picked like the step pairs.
    A wrong sample cut by the token limit (``finish_reason="length"``) gets no EOS: it did not end.
    """
    cfg = config or PairConfig()
    stats = stats if stats is not None else BuildStats()
    rows: list[dict[str, Any]] = []
    for g in group_rollouts(problems, rollouts, verdicts):
        rng = random.Random(f"{cfg.seed}/{g.problem.problem_id}")
        prompt = prompt_fn(g.problem) if prompt_fn else g.problem.prompt
        correct = _chosen_pool(g, cfg)
        group_rows = []
        for r in g.wrong:
            if not correct:
                stats.drop("no_chosen")
                continue
            chosen = _pick(correct, cfg.chosen, rng)
            group_rows.append(_pair(prompt, chosen, r.completion, r.finish_reason == "stop", g.problem.problem_id,
                                    r.rollout_id, -1))
        rows.extend(_select(group_rows, cfg, rng))
    stats.kept = len(rows)
    return _pairs_dataset(rows)
