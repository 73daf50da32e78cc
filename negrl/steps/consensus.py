"""Combine step labels from several sources, and measure how much sources agree.

BCPG-NSA (arXiv 2505.14403) keeps a step of a wrong answer as "correct" only if both its judges say so
(``rule="and"``). ``combine`` also offers ``"or"`` and majority ``"vote"``. ``None`` means *unknown* and is never
read as a verdict:

======  ================================================================================================
rule    step label
======  ================================================================================================
and     ``False`` if any source says ``False``; ``True`` if all sources say ``True``; else ``None``
or      ``True`` if any source says ``True``; ``False`` if all sources say ``False``; else ``None``
vote    majority of the sources that are not ``None``; a tie or no known source → ``None``
======  ================================================================================================

So under ``and`` a step with one ``True`` and one ``None`` stays unknown (a trainer that must treat unknown as wrong,
as BCPG-NSA does for disagreements, reads ``label is not True``). The consensus value of a step is the fraction of
known sources saying ``True``; ``first_error`` is the first ``False`` step when every earlier step is ``True``,
else ``None`` (unknown).

Agreement: ``agreement(a, b)`` (step-level agreement rate and Cohen's kappa over steps both sources know, plus
first-error agreement) and ``first_error_metrics(pred, truth)`` (precision / recall / accuracy of the first wrong
step against a reference such as the exact checker).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

from negrl.records import StepLabels


RULES = ("and", "or", "vote")


def combine_step(labels: Sequence[bool | None], rule: str = "and") -> bool | None:
    """One step's consensus label from its sources' labels (see the module table)."""
    known = [x for x in labels if x is not None]
    if rule == "and":
        return False if False in known else (True if known and len(known) == len(labels) else None)
    if rule == "or":
        return True if True in known else (False if known and len(known) == len(labels) else None)
    if rule == "vote":
        yes, no = known.count(True), known.count(False)
        return None if yes == no else yes > no
    raise ValueError(f"unknown consensus rule {rule!r}; expected one of {RULES}")


def first_error_of(labels: Sequence[bool | None]) -> int | None:
    """Index of the first ``False`` label if every label before it is ``True``; otherwise ``None``."""
    for i, x in enumerate(labels):
        if x is None:
            return None
        if x is False:
            return i
    return None


def _same_steps(sources: Sequence[StepLabels]) -> None:
    ref = sources[0]
    for other in sources[1:]:
        if other.rollout_id != ref.rollout_id:
            raise ValueError(f"cannot combine labels of rollouts {ref.rollout_id!r} and {other.rollout_id!r}")
        if [(s.start, s.end) for s in other.steps] != [(s.start, s.end) for s in ref.steps]:
            raise ValueError(
                f"rollout {ref.rollout_id!r}: sources {ref.source!r} and {other.source!r} segment it differently; "
                "label with the same segmentation rule"
            )


def combine(sources: Sequence[StepLabels], rule: str = "and") -> StepLabels:
    """Consensus ``StepLabels(source="consensus")`` of one rollout labelled by several sources."""
    if not sources:
        raise ValueError("combine needs at least one source")
    _same_steps(sources)
    per_step = list(zip(*(s.labels for s in sources))) if sources[0].steps else []
    labels = [combine_step(ls, rule) for ls in per_step]
    values: list[float | None] = []
    for ls in per_step:
        known = [x for x in ls if x is not None]
        values.append(sum(known) / len(known) if known else None)
    names = "+".join(s.source for s in sources)
    return StepLabels(
        rollout_id=sources[0].rollout_id, steps=sources[0].steps, values=values, labels=labels,
        first_error=first_error_of(labels), source="consensus", detail=f"{rule}({names})",
    )


def combine_labels(
    sources: dict[str, Sequence[StepLabels]] | Sequence[Sequence[StepLabels]], rule: str = "and"
) -> list[StepLabels]:
    """Consensus per rollout over several sources (a dict name → labels, or a list of label lists), joined on
    ``rollout_id`` in the order of the first source; rollouts missing from any source are skipped."""
    lists = list(sources.values()) if isinstance(sources, dict) else list(sources)
    by_source = [{lab.rollout_id: lab for lab in labs} for labs in lists]
    ids = [rid for rid in by_source[0] if all(rid in d for d in by_source[1:])] if by_source else []
    return [combine([d[rid] for d in by_source], rule) for rid in ids]


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two binary label sequences; ``None`` when undefined (no items, or chance agreement 1)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def agreement(a: Sequence[StepLabels], b: Sequence[StepLabels]) -> dict[str, Any]:
    """Step-level agreement (steps both sources know) and first-error agreement, over rollouts in both."""
    b_by = {lab.rollout_id: lab for lab in b}
    xs: list[bool] = []
    ys: list[bool] = []
    same_first, n_rollouts = 0, 0
    for la in a:
        lb = b_by.get(la.rollout_id)
        if lb is None:
            continue
        _same_steps([la, lb])
        n_rollouts += 1
        same_first += la.first_error == lb.first_error
        for x, y in zip(la.labels, lb.labels):
            if x is not None and y is not None:
                xs.append(x)
                ys.append(y)
    return {
        "rollouts": n_rollouts,
        "steps_compared": len(xs),
        "step_agreement": sum(x == y for x, y in zip(xs, ys)) / len(xs) if xs else None,
        "kappa": cohen_kappa(xs, ys),
        "first_error_agreement": same_first / n_rollouts if n_rollouts else None,
    }


def agreement_table(sources: dict[str, Sequence[StepLabels]]) -> list[dict[str, Any]]:
    """``agreement`` for every pair of sources, as rows ``{"a", "b", ...}``."""
    return [{"a": x, "b": y, **agreement(sources[x], sources[y])} for x, y in combinations(sources, 2)]


def first_error_metrics(pred: Sequence[StepLabels], truth: Sequence[StepLabels]) -> dict[str, Any]:
    """How well ``pred`` finds the first wrong step given by ``truth`` (e.g. the exact checker).

    Over the rollouts of ``truth`` (a rollout missing from ``pred`` counts as no prediction):
    ``accuracy`` = P(predicted first error == true first error, ``None == None`` included);
    ``precision`` = among rollouts where a first error is predicted, the fraction at the true step;
    ``recall`` = among rollouts that have a true first error, the fraction found at that step;
    ``coverage`` = fraction of rollouts with at least one known label; ``step_accuracy`` = agreement of the known
    step labels with the true ones.
    """
    p_by = {lab.rollout_id: lab for lab in pred}
    n = hits = n_pred = hit_pred = n_true = hit_true = covered = 0
    step_ok = step_n = 0
    for t in truth:
        p = p_by.get(t.rollout_id)
        pf = p.first_error if p is not None else None
        n += 1
        hits += pf == t.first_error
        if pf is not None:
            n_pred += 1
            hit_pred += pf == t.first_error
        if t.first_error is not None:
            n_true += 1
            hit_true += pf == t.first_error
        if p is not None:
            covered += any(x is not None for x in p.labels)
            for x, y in zip(p.labels, t.labels):
                if x is not None and y is not None:
                    step_n += 1
                    step_ok += x == y
    return {
        "rollouts": n,
        "accuracy": hits / n if n else None,
        "precision": hit_pred / n_pred if n_pred else None,
        "recall": hit_true / n_true if n_true else None,
        "coverage": covered / n if n else None,
        "step_accuracy": step_ok / step_n if step_n else None,
    }
