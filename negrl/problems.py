"""Where ``Problem`` records come from: one registry over the embedded tasks and the benchmark loaders.

    load_problems("gsm8k", split="test", limit=100)              # a benchmark: local files (or hub=...)
    load_problems("arithmetic", split="train", limit=4000, digits=2)   # an embedded task: generated, exact checker

| name | what | splits |
| --- | --- | --- |
| ``negrl.benchmarks.BENCHMARKS`` (gsm8k, math, math500, humaneval, mbpp, mbpp_sanitized, arc_easy, arc_challenge) | files / hub | see ``negrl.benchmarks`` |
| ``negrl.tasks.TASKS`` (arithmetic, arithmetic_choice, path_star, multipath) | generated | train, test |

An embedded task's ``test`` split is drawn first and excluded from ``train`` whatever the sizes (``seed`` picks the
draw; other keyword arguments are the task's knobs). ``negrl.tasks.get_task`` stays the way to reach a task's own
generator (``generate_problems`` with an exclusion set) and its exact step checker.
"""

from __future__ import annotations

import os
from typing import Any

from negrl.benchmarks import BENCHMARKS
from negrl.records import Problem
from negrl.tasks import TASKS, get_task


def problem_sets() -> list[str]:
    """Every name ``load_problems`` knows: benchmarks first, then embedded tasks."""
    return sorted(BENCHMARKS) + sorted(TASKS)


def is_benchmark(name: str) -> bool:
    """A real benchmark (files or hub), as opposed to an embedded, generated task."""
    return name in BENCHMARKS


def _embedded(name: str, split: str, limit: int | None, seed: int, **knobs: Any) -> list[Problem]:
    task = get_task(name, **knobs)
    if split == "test":  # test problems are drawn first and excluded from train, whatever the sizes
        return task.make_splits(0, limit or 500, seed=seed)[1]
    if split == "train":
        return task.make_splits(limit or 4000, 500, seed=seed)[0]
    raise ValueError(f"embedded task {name!r} has splits 'train' and 'test', got {split!r}")


def load_problems(
    name: str,
    split: str = "test",
    limit: int | None = None,
    path: str | os.PathLike | None = None,
    hub: str | None = None,
    **kwargs: Any,
) -> list[Problem]:
    """Problems of ``name`` (a benchmark or an embedded task): the first ``limit`` of ``split``, in source order.

    Args:
        name: One of ``problem_sets()``.
        split: Split name (benchmarks: see ``negrl.benchmarks``; embedded tasks: ``train`` / ``test``).
        limit: Keep the first ``limit`` problems (embedded tasks: generate that many; default 500 test / 4000 train).
        path: A benchmark's data file, or a data root holding its folder (default: ``$NEGRL_DATA`` or
            ``negrl.benchmarks.default_data_root()``).
        hub: A Hugging Face data set name, used instead of local files (e.g. ``"openai/gsm8k"``); ``hub_config=``
            names its configuration.
        kwargs: Loader-specific options (embedded tasks: their knobs and ``seed``).
    """
    if name in BENCHMARKS:
        return BENCHMARKS[name](path=path, split=split, limit=limit, hub=hub, **kwargs)
    if name in TASKS:
        if path is not None or hub is not None:
            raise ValueError(f"embedded task {name!r} is generated: it takes no path or hub")
        seed = kwargs.pop("seed", 0)
        return _embedded(name, split, limit, seed, **kwargs)
    raise ValueError(f"unknown benchmark or task {name!r}; known: {problem_sets()}")
