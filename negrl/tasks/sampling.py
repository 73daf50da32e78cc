"""Drawing distinct problems: the loop every embedded task's generator shares."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from negrl.records import Problem


def distinct_problems(
    make: Callable[[random.Random], Problem],
    n: int,
    rng_key: str,
    key: Callable[[Problem], str] = lambda p: p.problem_id,
    exclude: Iterable[str] = (),
    what: str = "problems",
) -> list[Problem]:
    """``n`` problems from ``make(rng)`` with distinct ``key(problem)``, none of them in ``exclude``.

    Deterministic in ``rng_key`` (a string seed, so each task and config draws its own stream). Raises a clear error
    when the problem space is too small to hold ``n`` distinct problems.
    """
    rng = random.Random(rng_key)
    seen: set[str] = set(exclude)
    out: list[Problem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"could not find {n} distinct {what} for {rng_key} (the space is too small)")
        p = make(rng)
        k = key(p)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def disjoint_splits(
    generate: Callable[..., list[Problem]],
    cfg: object,
    n_train: int,
    n_test: int,
    seed: int,
    key: Callable[[Problem], str] = lambda p: p.problem_id,
) -> tuple[list[Problem], list[Problem]]:
    """Train and test problems that never share a ``key``: the test set is drawn first (seed ``10_000 + seed``) and
    its keys are excluded from the training draw, so the test set does not depend on ``n_train``."""
    test = generate(cfg, n_test, seed=10_000 + seed)
    train = generate(cfg, n_train, seed=seed, exclude={key(p) for p in test})
    return train, test
