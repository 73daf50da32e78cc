"""Run-level metrics of an evaluation: per-problem pass@k / maj@k, their means with 95 % intervals, a Markdown table.

The estimators themselves (unbiased pass@k, majority vote, mean ± CI) live in ``negrl.metrics`` so recipes use the
same code; this module only groups verdicts by problem and formats results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from negrl.metrics import MeanCI, aggregate, maj_at_k, mean_ci, pass_at_k, per_problem_metrics
from negrl.records import Problem, Rollout, Verdict
from negrl.verifiers.math import normalize


__all__ = ["pass_at_k", "maj_at_k", "mean_ci", "problem_rows", "summarize", "count_unverified", "markdown_table"]


def _vote_key(problem: Problem, verdict: Verdict) -> str | None:
    """The answer a sample votes for: normalised final answer (math), exact answer (synthetic); code does not vote."""
    if problem.domain == "code" or verdict.extracted is None:
        return None
    return normalize(verdict.extracted) if problem.domain == "math" else verdict.extracted.strip()


def problem_rows(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict], ks: Sequence[int]
) -> list[dict[str, Any]]:
    """One JSON-able row per problem: gold, every sample with its verdict, and the problem's pass@k / maj@k."""
    by_problem: dict[str, list[tuple[Rollout, Verdict]]] = defaultdict(list)
    for r, v in zip(rollouts, verdicts):
        by_problem[r.problem_id].append((r, v))
    rows = []
    for p in problems:
        samples = sorted(by_problem[p.problem_id], key=lambda rv: rv[0].sample_index)
        votes = [(_vote_key(p, v), v.correct) for _, v in samples]
        metrics = per_problem_metrics(votes, ks)
        if p.domain == "code":
            metrics = {k: m for k, m in metrics.items() if not k.startswith("maj@")}
        rows.append({
            "problem_id": p.problem_id, "answer": p.answer, "metrics": metrics,
            "samples": [
                {"rollout_id": r.rollout_id, "completion": r.completion, "finish_reason": r.finish_reason,
                 "correct": v.correct, "extracted": v.extracted, "detail": v.detail}
                for r, v in samples
            ],
        })  # fmt: skip
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, MeanCI]:
    """Accuracy over all verified samples and the pass@k / maj@k means over problems (each with a 95 % CI)."""
    flags = [s["correct"] for row in rows for s in row["samples"]]
    out = {"accuracy": mean_ci([1.0 if c else 0.0 for c in flags if c is not None])}
    out.update(aggregate([row["metrics"] for row in rows]))
    return out


def count_unverified(rows: Sequence[dict[str, Any]]) -> int:
    """Samples the verifier could not judge (``correct=None``): never counted as wrong, reported separately."""
    return sum(s["correct"] is None for row in rows for s in row["samples"])


def _fmt(m: MeanCI | None) -> str:
    if m is None or m.n == 0:
        return "–"
    return f"{100 * m.mean:.1f} ± {100 * (m.hi - m.lo) / 2:.1f}"


def markdown_table(results: dict[str, dict[str, MeanCI]], n_problems: dict[str, int], unverified: dict[str, int]) -> str:
    """``| benchmark | problems | accuracy | pass@k ... | maj@k ... | unverified |`` (percent ± 95 % half-width)."""
    keys = sorted({k for r in results.values() for k in r if k.startswith(("pass@", "maj@"))},
                  key=lambda k: (k.split("@")[0] != "pass", int(k.split("@")[1])))  # fmt: skip
    header = ["benchmark", "problems", "accuracy", *keys, "unverified"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in results.items():
        cells = [name, str(n_problems[name]), _fmt(r.get("accuracy")), *(_fmt(r.get(k)) for k in keys),
                 str(unverified.get(name, 0))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
