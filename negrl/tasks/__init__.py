"""Embedded synthetic tasks: problems with gold step-by-step solutions and exact, per-step checkers.

Each task module provides a frozen config dataclass and the functions

    generate_problems(cfg, n, seed, exclude) -> list[Problem]
    make_splits(cfg, n_train, n_test, seed) -> (train, test)      # never share a problem
    verify(problem, completion) -> Verdict                         # the domain's verifier
    check_steps(problem, completion) -> list[bool]                 # ground truth per line

``get_task(name, **knobs)`` looks one up by name, so recipes choose the task from their YAML.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

from negrl.records import Problem
from negrl.tasks import arithmetic, arithmetic_choice, multipath, path_star


# task name → (module, config class). Each task's problems carry the module's domain.
TASKS: dict[str, tuple[ModuleType, type]] = {
    "arithmetic": (arithmetic, arithmetic.ArithmeticConfig),
    "arithmetic_choice": (arithmetic_choice, arithmetic_choice.ArithmeticChoiceConfig),  # domain "choice"
    "path_star": (path_star, path_star.PathStarConfig),
    "multipath": (multipath, multipath.MultipathConfig),
}
DOMAIN_TO_TASK = {"arithmetic": "arithmetic", "path_star": "path_star", "multipath": "multipath"}


@dataclasses.dataclass(frozen=True)
class EmbeddedTask:
    """A task module bound to its config: ``get_task("arithmetic", digits=2).make_splits(4000, 512)``."""

    name: str
    module: ModuleType
    config: Any

    def generate_problems(self, n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
        return self.module.generate_problems(self.config, n, seed, exclude)

    def make_splits(self, n_train: int, n_test: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
        return self.module.make_splits(self.config, n_train, n_test, seed)


def get_task(name: str, **knobs: Any) -> EmbeddedTask:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    module, config_cls = TASKS[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(knobs) - fields
    if unknown:
        raise ValueError(f"task {name!r} has no knob(s) {sorted(unknown)}; knobs: {sorted(fields)}")
    return EmbeddedTask(name=name, module=module, config=config_cls(**knobs))


def check_steps(problem: Problem, completion: str) -> list[bool]:
    """Ground-truth per-line correctness for a problem of an embedded task (dispatch on ``problem.domain``)."""
    if problem.domain not in DOMAIN_TO_TASK:
        raise ValueError(f"no exact step checker for domain {problem.domain!r} (only embedded tasks have one)")
    return TASKS[DOMAIN_TO_TASK[problem.domain]][0].check_steps(problem, completion)


def first_error(problem: Problem, completion: str) -> int | None:
    """Index of the first wrong line by the exact checker, ``None`` if all are right."""
    return next((i for i, ok in enumerate(check_steps(problem, completion)) if not ok), None)
