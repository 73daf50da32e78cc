"""Verifiers: ``verify(problem, completion) -> Verdict``, dispatched on ``problem.domain``.

The verifier used for training is the verifier used for evaluation. ``correct=None`` means "could not verify" and is
never counted as a negative.
"""

from __future__ import annotations

from collections.abc import Callable

from negrl.records import Problem, Rollout, Verdict, problems_by_id
from negrl.tasks import arithmetic, multipath, path_star
from negrl.verifiers import choice
from negrl.verifiers import code as code_verifier
from negrl.verifiers import math as math_verifier


Verifier = Callable[[Problem, str], Verdict]

# domain → verifier. Each returns a Verdict with an empty rollout_id; `verify` fills it in.
VERIFIERS: dict[str, Verifier] = {
    "arithmetic": arithmetic.verify,
    "choice": choice.verify,
    "code": code_verifier.verify,
    "math": math_verifier.verify,
    "path_star": path_star.verify,
    "multipath": multipath.verify,
}


def verify(problem: Problem, completion: str, rollout_id: str = "") -> Verdict:
    """Judge ``completion`` for ``problem`` with the verifier of its domain."""
    try:
        fn = VERIFIERS[problem.domain]
    except KeyError:
        raise ValueError(f"no verifier for domain {problem.domain!r}; known: {sorted(VERIFIERS)}") from None
    verdict = fn(problem, completion)
    verdict.rollout_id = rollout_id
    return verdict


def verify_rollouts(
    problems: dict[str, Problem] | list[Problem], rollouts: list[Rollout], max_workers: int = 1
) -> list[Verdict]:
    """Verify each rollout against its problem (looked up by ``problem_id``), in input order.

    ``max_workers > 1`` verifies in a thread pool: every verifier is thread-safe and bounded in time in any thread
    (math-verify runs in worker processes killed at a deadline; code runs in its own sandbox), so threads overlap.
    """
    by_id = problems_by_id(problems.values() if isinstance(problems, dict) else problems, rollouts, "verify_rollouts")

    def one(r: Rollout) -> Verdict:
        return verify(by_id[r.problem_id], r.completion, rollout_id=r.rollout_id)

    if max_workers <= 1 or len(rollouts) < 2:
        return [one(r) for r in rollouts]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(one, rollouts))
