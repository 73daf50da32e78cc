"""Typed records passed between pipeline stages.

One record per stage boundary:

    Problem ─ generate ─▶ Rollout ─ verify ─▶ Verdict ─ segment + label ─▶ StepLabels

Records are flat dataclasses of JSON-able fields; stages join them on ids, never by nesting. Every record names what
produced it, because a negative sample is only as good as the verifier or labeller behind it. "Could not verify" is
always ``None`` — never ``False``.

This module imports nothing heavy, so it can be used from tests, recipes and data tools without torch.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


R = TypeVar("R", bound="Record")

# Domains a verifier is registered for (`negrl.verifiers.verify` dispatches on this field).
DOMAINS = ("arithmetic", "path_star", "math", "code", "choice", "multipath")


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields (cached: ``from_row`` runs once per stored record)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _type_name(hint: Any) -> str:
    """``list[Step] | None`` rather than ``typing.Optional[list[negrl.records.Step]]``."""
    return hint.__name__ if isinstance(hint, type) else re.sub(r"(?:\w+\.)+(\w+)", r"\1", str(hint))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@functools.cache
def _checker(hint: Any) -> Callable[[Any], bool]:
    """A predicate for "this JSON value fits the field annotation ``hint``", built once per annotation (``from_row``
    runs once per stored record). Handles str, int, float, bool, None, unions, ``list[X]``, ``dict[K, V]``,
    ``Literal``, tuples (stored as lists) and nested dataclasses (stored as dicts). ``bool`` is not an ``int`` here,
    an ``int`` is a ``float`` (JSON tools write ``1.0`` as ``1``), and a float is never an ``int`` (``12.5`` would be
    truncated downstream)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return lambda v: True
    if hint is None or hint is type(None):
        return lambda v: v is None
    if origin in (typing.Union, types.UnionType):
        parts = tuple(_checker(h) for h in args)
        return lambda v: any(p(v) for p in parts)
    if origin in (list, Sequence):
        item = _checker(args[0] if args else Any)
        return lambda v: isinstance(v, list) and all(map(item, v))
    if origin is dict:
        key, item = (_checker(a) for a in (args or (Any, Any)))
        return lambda v: isinstance(v, dict) and all(key(k) and item(x) for k, x in v.items())
    if origin is typing.Literal:
        return lambda v: v in args
    if origin is tuple:  # JSON has no tuples: a stored tuple comes back as a list
        return lambda v: isinstance(v, (list, tuple))
    if hint is int:
        return _is_int
    if hint is float:
        return _is_float
    if dataclasses.is_dataclass(hint):
        return lambda v: isinstance(v, (dict, hint))
    kind = origin or hint
    return lambda v: isinstance(v, kind)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field annotation (see ``_checker``)."""
    return _checker(hint)(value)


def _dataclass_in(hint: Any) -> Any:
    """The dataclass a field holds (``Step`` for ``list[Step]`` / ``Step | None``), or None."""
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        found = _dataclass_in(arg)
        if found is not None:
            return found
    return None


def _check_field(owner: type, name: str, value: Any, hint: Any) -> None:
    """Raise ``TypeError`` naming ``owner.name``, the expected type and the value when ``value`` does not fit.

    Nested dataclasses (``StepLabels.steps``) are checked field by field, so the message names e.g.
    ``StepLabels.steps[2].start``."""
    if not _matches(value, hint):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise TypeError(f"field {owner.__name__}.{name}: expected {_type_name(hint)}, got {type(value).__name__} "
                        f"{shown}")
    nested = _dataclass_in(hint)
    if nested is None:
        return
    items = [(name, value)] if isinstance(value, dict) else list(
        (f"{name}[{i}]", v) for i, v in enumerate(value)) if isinstance(value, list) else []
    types_ = _field_types(nested)
    for label, item in items:
        if not isinstance(item, dict):
            continue
        if set(item) != set(types_):
            raise TypeError(f"field {owner.__name__}.{label}: a {nested.__name__} has fields {sorted(types_)}, "
                            f"got {sorted(item)}")
        for key, v in item.items():
            _check_field(owner, f"{label}.{key}", v, types_[key])


class Record:
    """Mixin: ``to_row`` / ``from_row`` round-trip through plain JSON-able dicts."""

    key_field: ClassVar[str]

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_row(cls: type[R], row: dict[str, Any]) -> R:
        """Build a record from a row, rejecting unknown or missing fields with a clear message."""
        if not isinstance(row, dict):
            raise TypeError(f"{cls.__name__}.from_row expects a dict, got {type(row).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(row) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
        required = {
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = required - set(row)
        if missing:
            raise ValueError(f"{cls.__name__}: missing field(s) {sorted(missing)}")
        for name, value in row.items():
            _check_field(cls, name, value, _field_types(cls)[name])
        return cls._decode(dict(row))

    @classmethod
    def _decode(cls: type[R], row: dict[str, Any]) -> R:
        return cls(**row)

    @property
    def key(self) -> str:
        return getattr(self, self.key_field)


@dataclass
class Problem(Record):
    """A task instance.

    Attributes:
        problem_id: Unique id (stable across runs: loaders derive it from the source's own id).
        domain: Which verifier applies: one of ``DOMAINS``.
        prompt: The text the policy continues (plain string; chat templates are applied by generation).
        answer: Gold final answer (math, synthetic tasks) or gold choice label (multiple choice).
        tests: Test code (code domain): executed after the completion in the sandbox.
        choices: Candidate answers (multiple choice), in the order of ``choice_labels``.
        choice_labels: Labels of ``choices`` (``["A", "B", ...]``).
        solution: A gold step-by-step solution when the source has one (used for SFT, never by post-training).
        source: Where the problem came from (``"gsm8k:test"``, ``"arithmetic:n3d2"``, ...).
        meta: Anything else a verifier needs (e.g. HumanEval ``entry_point``, the synthetic task's operands).
    """

    key_field: ClassVar[str] = "problem_id"

    problem_id: str
    domain: str
    prompt: str
    answer: str | None = None
    tests: str | None = None
    choices: list[str] | None = None
    choice_labels: list[str] | None = None
    solution: str | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"Problem {self.problem_id!r}: unknown domain {self.domain!r}; expected one of {DOMAINS}")


@dataclass
class Rollout(Record):
    """One sampled completion of a problem.

    Attributes:
        rollout_id: Unique id, ``"{problem_id}#{sample_index}"`` by default.
        problem_id: The problem this completes.
        completion: Generated text, stop string removed.
        finish_reason: ``"stop"`` (EOS or a stop string) or ``"length"`` (hit ``max_new_tokens``).
        model: Name or path of the policy that produced it.
        sample_index: Index among the samples of this problem.
        temperature: Sampling temperature (0 = greedy).
        top_p: Nucleus sampling parameter (1.0 = off).
        seed: Seed of the generation call.
        prefix: Text forced before ``completion`` (Monte-Carlo continuations of a step prefix); "" for fresh samples.
        completion_ids: The generated token ids behind ``completion`` (EOS and the stop string's tokens removed), when
            the generator recorded them: a prefix of the rollout is then continued from these ids, never from
            re-encoded text (``None`` for records written before ids were kept, or built from text).
    """

    key_field: ClassVar[str] = "rollout_id"

    rollout_id: str
    problem_id: str
    completion: str
    finish_reason: str = "stop"
    model: str = ""
    sample_index: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    prefix: str = ""
    completion_ids: list[int] | None = None


@dataclass
class Verdict(Record):
    """The verifier's judgement of one rollout.

    Attributes:
        rollout_id: The rollout judged.
        correct: ``True`` / ``False``, or ``None`` when it could not be verified (unparseable gold, sandbox error).
        extracted: The final answer the verifier read from the completion (``None`` if none was found).
        detail: Human-readable detail, e.g. ``"3/5 tests passed; AssertionError"``.
        verifier: Name of the verifier (``"math"``, ``"code"``, ``"arithmetic"``, ...).
    """

    key_field: ClassVar[str] = "rollout_id"

    rollout_id: str
    correct: bool | None
    extracted: str | None = None
    detail: str = ""
    verifier: str = ""


@dataclass
class Step:
    """A step of a completion: ``completion[start:end] == text``."""

    text: str
    start: int
    end: int


@dataclass
class StepLabels(Record):
    """Per-step correctness of one rollout, from one source.

    Attributes:
        rollout_id: The rollout labelled.
        steps: The segmentation; joining ``step.text`` reproduces the completion exactly.
        values: Per-step score in [0, 1] (Monte-Carlo success rate, PRM probability), ``None`` if not scored.
        labels: Per-step correctness; ``None`` = unknown (never read as wrong).
        first_error: Index of the first wrong step (the *critical step* / first pit), ``None`` if no step is wrong
            or it is unknown.
        source: ``"mc"``, ``"prm"``, ``"judge"``, ``"oracle"`` or ``"consensus"``.
        prefix_value: Value of the bare prompt (Monte-Carlo ``value(0)``), when the source computes it.
        detail: Free-form provenance (e.g. ``"K=5 best_of_k"``, raw judge output on a parse failure).
        continuations: Monte-Carlo only: a verified-correct continuation of the prefix ending after step ``i``, keyed
            ``str(i)`` (``"-1"`` = the bare prompt), for the prefixes where one was found.
    """

    key_field: ClassVar[str] = "rollout_id"

    rollout_id: str
    steps: list[Step]
    values: list[float | None]
    labels: list[bool | None]
    first_error: int | None
    source: str
    prefix_value: float | None = None
    detail: str = ""
    continuations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.steps)
        if len(self.values) != n or len(self.labels) != n:
            raise ValueError(
                f"StepLabels {self.rollout_id!r}: {n} steps but {len(self.values)} values and {len(self.labels)} labels"
            )

    @classmethod
    def _decode(cls, row: dict[str, Any]) -> StepLabels:
        row["steps"] = [s if isinstance(s, Step) else Step(**s) for s in row["steps"]]
        return cls(**row)

    @property
    def advantages(self) -> list[float | None]:
        """Per-step advantage ``value(i) - value(i-1)`` with ``value(-1) = prefix_value`` (Setlur et al., Eq. 3)."""
        out: list[float | None] = []
        prev = self.prefix_value
        for v in self.values:
            out.append(None if v is None or prev is None else v - prev)
            prev = v
        return out


def problems_by_id(problems: Iterable[Problem], rollouts: Iterable[Rollout] = (), where: str = "") -> dict[str, Problem]:
    """``{problem_id: problem}`` (the last of equal ids wins), checking that every rollout names one of them.

    A rollout of an unknown problem (a rollouts stage paired with another problems stage) raises ``ValueError``
    naming the rollout, its problem id and ``where`` (e.g. the stage paths), before any work starts, instead of a
    bare ``KeyError`` deep inside a labeller.
    """
    prefix = f"{where}: " if where else ""
    by_id = {p.problem_id: p for p in problems}
    unknown = [r for r in rollouts if r.problem_id not in by_id]
    if unknown:
        r = unknown[0]
        known = ", ".join(repr(k) for k in list(by_id)[:3]) or "none"
        raise ValueError(f"{prefix}{len(unknown)} rollout(s) name a problem that is not among the {len(by_id)} "
                         f"problems, e.g. rollout {r.rollout_id!r} of problem {r.problem_id!r} (known ids: {known}, "
                         "...): were the rollouts made from another problems stage?")
    return by_id
