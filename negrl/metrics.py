"""Evaluation metrics shared by recipes and ``eval/``: unbiased pass@k, maj@k, mean with a confidence interval, and the
paired difference of two arms over seeds with its t-interval.

Plain accuracy of a list of verdicts is ``negrl.evaluation.accuracy``. Samples with ``correct=None`` ("could not
verify") are never counted as wrong: pass@k uses the verified samples only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from ``n`` samples with ``c`` correct (Chen et al. 2021, Eq. 1).

    ``1 - C(n-c, k) / C(n, k)``, computed as a stable product. Requires ``1 <= k <= n`` and ``0 <= c <= n``.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


@dataclass
class MeanCI:
    """A mean with a normal-approximation confidence interval (``lo``/``hi`` clipped to [0, 1] for rates)."""

    mean: float
    lo: float
    hi: float
    n: int


def mean_ci(values: Sequence[float], z: float = 1.96, clip01: bool = True) -> MeanCI:
    """Mean of ``values`` and its ``z`` standard-error interval (95 % by default); NaN for an empty input."""
    n = len(values)
    if n == 0:
        return MeanCI(float("nan"), float("nan"), float("nan"), 0)
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(var / n)
    lo, hi = m - half, m + half
    if clip01:
        lo, hi = max(0.0, lo), min(1.0, hi)
    return MeanCI(m, lo, hi, n)


# Two-sided 95 % quantiles t_{0.975, df} of Student's t for df = 1..30 (beyond: the normal 1.96 plus the first
# Cornish-Fisher term, within 0.002 of the exact value).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """``t_{0.975, df}``: the half-width factor of a 95 % t-interval with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"t975 needs df >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96 + (1.96**3 + 1.96) / (4 * df)


@dataclass
class PairedDifference:
    """Mean of paired differences ``a_i - b_i`` (one pair per seed) with its 95 % t-interval.

    ``lo``/``hi`` are NaN with fewer than 2 pairs (no interval from one seed). ``excludes_zero``: the interval lies
    entirely above or below 0.
    """

    mean: float
    lo: float
    hi: float
    n: int
    diffs: list[float]

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        """``"+2.3 [+0.4, +4.2]"`` (in points with the default ``scale``); ``"+2.3 (1 seed)"`` without an interval."""
        if self.n < 2:
            return f"{scale * self.mean:+.{digits}f} ({self.n} seed)"
        return f"{scale * self.mean:+.{digits}f} [{scale * self.lo:+.{digits}f}, {scale * self.hi:+.{digits}f}]"


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """Paired difference of two arms measured on the same seeds (same base, same prompts): mean and t-interval.

    ``mean ± t_{0.975, n-1} · sd(d) / sqrt(n)`` over ``d_i = a_i - b_i``. Pairing removes what the two arms share
    (the base, the prompt pool, the test set's difficulty), which is most of the seed-to-seed variation.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs one value per seed in each arm, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_difference needs at least one pair")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    m = sum(d) / n
    if n < 2:
        return PairedDifference(m, float("nan"), float("nan"), n, d)
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return PairedDifference(m, m - half, m + half, n, d)


def majority_vote(answers: Sequence[str | None], correct: Sequence[bool | None]) -> bool | None:
    """Is the most frequent answer correct? Ties go to the answer seen first; ``None`` answers do not vote.

    ``answers`` should already be normalised (equal strings = same answer). Returns ``False`` when no sample has
    an answer and ``None`` when the winning answer could not be verified.
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    best = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == best)
    return next(c for a, c in zip(answers, correct) if a == winner)


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool | None], k: int) -> bool | None:
    """maj@k of one problem: the majority vote over its first ``k`` samples."""
    if not 1 <= k <= len(answers):
        raise ValueError(f"maj_at_k needs 1 <= k <= {len(answers)} samples, got k={k}")
    return majority_vote(answers[:k], correct[:k])


def per_problem_metrics(
    samples: Sequence[tuple[str | None, bool | None]], ks: Sequence[int]
) -> dict[str, float | None]:
    """pass@k (over verified samples) and maj@k (first ``k`` samples) of one problem.

    ``samples`` holds ``(normalised answer, correct)`` per sample in sampling order. A key is ``None`` when the
    metric is undefined (fewer verified samples than ``k``).
    """
    verified = [c for _, c in samples if c is not None]
    n, c = len(verified), sum(bool(x) for x in verified)
    out: dict[str, float | None] = {}
    for k in ks:
        out[f"pass@{k}"] = pass_at_k(n, c, k) if k <= n else None
        if k <= len(samples):
            maj = maj_at_k([a for a, _ in samples], [x for _, x in samples], k)
            out[f"maj@{k}"] = None if maj is None else float(maj)
        else:
            out[f"maj@{k}"] = None
    return out


def aggregate(per_problem: Sequence[dict[str, float | None]]) -> dict[str, MeanCI]:
    """Mean (with CI) of each per-problem metric over the problems where it is defined."""
    keys = dict.fromkeys(k for row in per_problem for k in row)
    return {k: mean_ci([row[k] for row in per_problem if row.get(k) is not None]) for k in keys}
