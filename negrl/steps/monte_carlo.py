"""Monte-Carlo step values (Setlur et al. 2024, ``reference/papers.md`` §1.2–1.3, §1.8).

For a rollout ``y = (y_1 … y_L)`` of problem ``x``, the value of step ``i`` is the chance that the rollout policy,
continuing after the prefix ``x ⊕ y_1:i``, reaches a correct final answer (checked by the same verifier as the
rollout). ``K`` continuations are sampled per prefix and turned into a value by the *estimator*:

- ``"best_of_k"`` (paper default): 1 if any of the K continuations is correct, else 0 — the value under the
  best-of-K policy ``BoK(π)`` as estimated from one draw of K samples;
- ``"mean"``: the success rate ``q̂`` (plain value of ``π``; for advantage-weighted variants);
- ``"bok_from_mean"``: ``1 − (1 − q̂)^bok_k`` (the best-of-``bok_k`` value implied by ``q̂``; papers.md §1.8.2).

``prefix_value`` (``value(0)`` in the paper, ``value(-1)`` in ``StepLabels.advantages``) comes from K continuations of
the bare prompt. The *last* step's prefix is the whole completion, so its value is the rollout's reward (1 correct,
0 wrong): a complete wrong answer has value 0 at its last step, hence every wrong rollout has a pit.

First pit (critical step): ``"first_zero"`` — the first step whose value is 0; ``"first_min"`` — the first step
attaining the minimum value, if that minimum is below 1. On a wrong rollout with ``best_of_k`` both coincide. Labels:
steps before the pit are ``True`` (their value is > 0), the pit and every later step ``False`` (error propagation);
no pit → every step ``True``. ``first_error`` is the pit.

Speed (``perf/mc_labeling.py``): identical prefixes (same problem, same prefix text) are computed once; all
prefixes of a work unit go through ONE ``continue_fn`` call (``negrl.generation.generate_texts``: length-sorted
chunks); the last step needs no generation; ``stop`` strings / ``max_new_tokens`` end continuations early; with
``early_stop`` the work goes level by level and a rollout stops being extended after its first zero.

Resumability and determinism: rollouts are packed, whole problems at a time, into fixed *work units* of about
``unit_size`` rollouts; unit ``u`` is generated with seed ``seed·1_000_003 + u·1009 + level``, so its labels do not
depend on which other units ran before, in which process, or whether the run was killed and resumed. With
``out_dir``, each finished unit is flushed as one shard of a ``negrl.io.StageWriter`` stage (manifest last).

Several processes (``accelerate launch``): units are split with ``PartialState().split_between_processes``; process
``r`` of ``n`` writes its stage under ``out_dir/proc-{r:02d}-of-{n:02d}/`` and the labels of all processes are gathered
(``accelerate.utils.gather_object``) and returned, in input order, by every process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from negrl.io import StageWriter, ids_digest
from negrl.processes import num_processes, process_state
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.steps.segment import segment
from negrl.verifiers import verify


# continue_fn(prefix_texts, seed) -> one continuation per prefix text (the prefix itself not repeated).
ContinueFn = Callable[[list[str], int], list[str]]

ESTIMATORS = ("best_of_k", "mean", "bok_from_mean")
PIT_RULES = ("first_zero", "first_min")


@dataclass
class MonteCarloConfig:
    """Settings of Monte-Carlo step labelling.

    Attributes:
        k: Continuations per prefix (paper: K = 5).
        estimator: ``"best_of_k"`` | ``"mean"`` | ``"bok_from_mean"`` (see the module docstring).
        bok_k: ``K`` of ``1 − (1 − q̂)^K`` for ``"bok_from_mean"`` (default: ``k``).
        pit_rule: ``"first_zero"`` | ``"first_min"``.
        temperature, top_p: Sampling of the continuations.
        max_new_tokens: Cap on each continuation.
        batch_size: Sequences per ``generate`` call.
        stop: Stop strings for continuations (e.g. ``["\\n\\n"]``); the arithmetic task ends at ``<eos>`` after its
            answer line anyway.
        seed: Base seed (see the module docstring for per-unit seeds).
        only_incorrect: Label only rollouts whose verdict is ``False`` (the negatives); otherwise every verifiable
            rollout. Unverifiable rollouts (verdict ``None``) are never labelled.
        early_stop: Level-by-level generation that skips a rollout's later prefixes after its first zero value
            (needs ``pit_rule="first_zero"``); their values are then ``None`` while their labels are ``False``.
        segment_rule, min_chars, max_steps: Passed to ``negrl.steps.segment``.
        unit_size: Rollouts per work unit (whole problems are kept together so deduplication sees all their
            rollouts); also the granularity of resumption.
        use_chat_template: Wrap prompts with the chat template (instruct models), as for the rollouts.
        show_progress: Progress bar over work units.
    """

    k: int = 5
    estimator: str = "best_of_k"
    bok_k: int | None = None
    pit_rule: str = "first_zero"
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    only_incorrect: bool = True
    early_stop: bool = False
    segment_rule: str = "lines"
    min_chars: int = 0
    max_steps: int | None = None
    unit_size: int = 256
    use_chat_template: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"MonteCarloConfig.estimator: {self.estimator!r} is not one of {ESTIMATORS}")
        if self.pit_rule not in PIT_RULES:
            raise ValueError(f"MonteCarloConfig.pit_rule: {self.pit_rule!r} is not one of {PIT_RULES}")
        if self.k < 1 or self.unit_size < 1:
            raise ValueError("MonteCarloConfig.k and unit_size must be >= 1")
        if self.early_stop and self.pit_rule != "first_zero":
            raise ValueError("MonteCarloConfig.early_stop needs pit_rule='first_zero'")


def estimate_value(successes: Sequence[bool | None], config: MonteCarloConfig) -> float | None:
    """Value of a prefix from its continuations' verdicts; unverifiable ones are ignored (all → ``None``)."""
    known = [s for s in successes if s is not None]
    if not known:
        return None
    q = sum(known) / len(known)
    if config.estimator == "best_of_k":
        return 1.0 if q > 0 else 0.0
    if config.estimator == "mean":
        return q
    return 1.0 - (1.0 - q) ** (config.bok_k or config.k)


def find_pit(values: Sequence[float | None], rule: str = "first_zero") -> int | None:
    """The first pit: first zero value, or first minimum below 1 (``None`` values are skipped)."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if rule == "first_zero":
        return next((i for i, v in known if v == 0), None)
    if rule == "first_min":
        if not known:
            return None
        low = min(v for _, v in known)
        return next(i for i, v in known if v == low) if low < 1 else None
    raise ValueError(f"unknown pit rule {rule!r}; expected one of {PIT_RULES}")


def labels_from_pit(n_steps: int, pit: int | None) -> list[bool | None]:
    """Steps before the pit are correct, the pit and later steps wrong; no pit → all correct."""
    return [pit is None or i < pit for i in range(n_steps)]


def plan_units(rollouts: Sequence[Rollout], unit_size: int) -> list[list[int]]:
    """Pack rollout indices into units of about ``unit_size``, never splitting one problem's rollouts."""
    by_problem: dict[str, list[int]] = {}
    for i, r in enumerate(rollouts):
        by_problem.setdefault(r.problem_id, []).append(i)
    units: list[list[int]] = []
    current: list[int] = []
    for idx in by_problem.values():
        if current and len(current) + len(idx) > unit_size:
            units.append(current)
            current = []
        current = current + idx
    if current:
        units.append(current)
    return units


@dataclass
class _Item:
    problem: Problem
    rollout: Rollout
    verdict: Verdict
    prompt_text: str
    steps: list[Any]


def _compute_values(
    keys: list[tuple[str, str]], items_by_pid: dict[str, _Item], continue_fn: ContinueFn, seed: int,
    config: MonteCarloConfig,
) -> dict[tuple[str, str], float | None]:
    """One batched ``continue_fn`` call for all ``(problem_id, prefix)`` keys × K; verify; estimate."""
    texts = [items_by_pid[pid].prompt_text + prefix for pid, prefix in keys for _ in range(config.k)]
    if not texts:
        return {}
    conts = continue_fn(texts, seed)
    if len(conts) != len(texts):
        raise ValueError(f"continue_fn returned {len(conts)} continuations for {len(texts)} prefixes")
    out: dict[tuple[str, str], float | None] = {}
    for j, (pid, prefix) in enumerate(keys):
        problem = items_by_pid[pid].problem
        oks = [verify(problem, prefix + c).correct for c in conts[j * config.k : (j + 1) * config.k]]
        out[(pid, prefix)] = estimate_value(oks, config)
    return out


def _label_unit(items: list[_Item], continue_fn: ContinueFn, seed: int, config: MonteCarloConfig) -> list[StepLabels]:
    """Values of every prefix of the unit's rollouts (deduplicated), then pits and labels."""
    by_pid = {it.problem.problem_id: it for it in items}
    cache: dict[tuple[str, str], float | None] = {}
    # Prefix keys per rollout: the bare prompt, then every step but the last (its value is the reward).
    per_item = [
        [(it.problem.problem_id, "")] + [(it.problem.problem_id, it.rollout.completion[: s.end]) for s in it.steps[:-1]]
        for it in items
    ]
    if not config.early_stop:
        keys = list(dict.fromkeys(k for ks in per_item for k in ks))
        cache.update(_compute_values(keys, by_pid, continue_fn, seed, config))
    else:
        # Level 1 (with the bare prompts) first; level L+1 only for rollouts whose step-L value is not zero.
        alive = [i for i in range(len(items)) if len(per_item[i]) > 1]
        keys = list(dict.fromkeys([ks[0] for ks in per_item] + [per_item[i][1] for i in alive]))
        cache.update(_compute_values(keys, by_pid, continue_fn, seed, config))
        level = 1
        while alive:
            alive = [i for i in alive if cache[per_item[i][level]] != 0 and level + 1 < len(per_item[i])]
            level += 1
            keys = [k for k in dict.fromkeys(per_item[i][level] for i in alive) if k not in cache]
            cache.update(_compute_values(keys, by_pid, continue_fn, seed + level, config))
    out = []
    for it, ks in zip(items, per_item):
        reward = it.verdict.correct
        values: list[float | None] = [cache.get(k) for k in ks[1:]]
        if it.steps:
            values.append(None if reward is None else float(reward))
        pit = find_pit(values, config.pit_rule)
        detail = f"K={config.k} {config.estimator} {config.pit_rule}"
        out.append(
            StepLabels(
                rollout_id=it.rollout.rollout_id, steps=it.steps, values=values,
                labels=labels_from_pit(len(it.steps), pit), first_error=pit, source="mc",
                prefix_value=cache.get(ks[0]), detail=detail,
            )
        )
    return out


def hf_continue_fn(model: Any, tokenizer: Any, config: MonteCarloConfig) -> ContinueFn:
    """The default ``continue_fn``: ``negrl.generation.generate_texts`` with the config's sampling settings."""
    from negrl.generation import GenerationConfig, generate_texts

    def continue_fn(texts: list[str], seed: int) -> list[str]:
        gen = GenerationConfig(
            temperature=config.temperature, top_p=config.top_p, max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size, stop=list(config.stop), seed=seed, show_progress=False,
        )
        return [g.text for g in generate_texts(texts, model, tokenizer, gen)]

    return continue_fn


def _select(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict], config: MonteCarloConfig,
    tokenizer: Any,
) -> list[_Item]:
    by_id = {p.problem_id: p for p in problems}
    verdict_of = {v.rollout_id: v for v in verdicts}
    items = []
    for r in rollouts:
        v = verdict_of.get(r.rollout_id)
        if v is None:
            raise ValueError(f"label_monte_carlo: no verdict for rollout {r.rollout_id!r}")
        if r.problem_id not in by_id:
            raise ValueError(f"label_monte_carlo: rollout {r.rollout_id!r} has unknown problem {r.problem_id!r}")
        if v.correct is None or (config.only_incorrect and v.correct):
            continue
        p = by_id[r.problem_id]
        if tokenizer is not None:
            from negrl.generation import format_prompt

            prompt = format_prompt(p.prompt, tokenizer, config.use_chat_template)
        else:
            prompt = p.prompt
        steps = segment(r.completion, config.segment_rule, min_chars=config.min_chars, max_steps=config.max_steps)
        items.append(_Item(problem=p, rollout=r, verdict=v, prompt_text=prompt, steps=steps))
    return items


def _stage_config(config: MonteCarloConfig, items: list[_Item], model_name: str) -> dict[str, Any]:
    ids = ids_digest((it.rollout.rollout_id for it in items), length=16)
    cfg = asdict(config)
    cfg.pop("show_progress")
    return {**cfg, "model": model_name, "n_rollouts": len(items), "rollout_ids_sha1": ids}


def _run_units(
    units: list[int], plan: list[list[int]], items: list[_Item], continue_fn: ContinueFn, config: MonteCarloConfig,
    writer: StageWriter | None,
) -> list[StepLabels]:
    done: dict[str, StepLabels] = {r.rollout_id: r for r in writer.records()} if writer else {}
    for u in tqdm(units, desc="mc-label", unit="unit", disable=not config.show_progress or len(units) < 2):
        unit_items = [items[i] for i in plan[u]]
        if all(it.rollout.rollout_id in done for it in unit_items):
            continue  # finished before an interruption
        seed = config.seed * 1_000_003 + u * 1009
        labelled = _label_unit(unit_items, continue_fn, seed, config)
        done.update((lab.rollout_id, lab) for lab in labelled)
        if writer is not None:
            writer.write(labelled)
            writer.flush()  # one shard per unit: a killed run loses at most the unit in progress
    if writer is not None and not writer.complete:
        writer.finalize(units=len(units))
    mine = {items[i].rollout.rollout_id for u in units for i in plan[u]}
    return [lab for rid, lab in done.items() if rid in mine]


def label_monte_carlo(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    model: Any = None,
    tokenizer: Any = None,
    config: MonteCarloConfig | None = None,
    out_dir: str | Path | None = None,
    continue_fn: ContinueFn | None = None,
) -> list[StepLabels]:
    """Monte-Carlo ``StepLabels(source="mc")`` for the selected rollouts (see the module docstring), in input order.

    Args:
        problems, rollouts, verdicts: Joined on ``problem_id`` / ``rollout_id``; every rollout needs a verdict.
        model, tokenizer: The rollout policy for continuations (ignored when ``continue_fn`` is given, except that
            the tokenizer formats prompts when ``use_chat_template`` is set).
        config: ``MonteCarloConfig`` (defaults: K=5, best-of-K, first zero, wrong rollouts only).
        out_dir: Stage directory (resumable shards + manifest); ``None`` keeps everything in memory.
        continue_fn: ``continue_fn(prefix_texts, seed) -> continuations``; replaces generation (tests, other
            backends). Must be deterministic in ``(prefix_texts, seed)`` for resumption to be exact.
    """
    config = config or MonteCarloConfig()
    if continue_fn is None:
        if model is None or tokenizer is None:
            raise ValueError("label_monte_carlo needs a model and tokenizer, or a continue_fn")
        continue_fn = hf_continue_fn(model, tokenizer, config)
    items = _select(problems, rollouts, verdicts, config, tokenizer)
    plan = plan_units([it.rollout for it in items], config.unit_size)
    units = list(range(len(plan)))
    model_name = str(getattr(model, "name_or_path", "") or "")
    n_proc = num_processes()
    if n_proc == 1:
        writer = StageWriter(out_dir, StepLabels, _stage_config(config, items, model_name)) if out_dir else None
        labelled = _run_units(units, plan, items, continue_fn, config, writer)
    else:
        from accelerate.utils import gather_object

        state = process_state()
        with state.split_between_processes(units) as my_units:
            sub = Path(out_dir) / f"proc-{state.process_index:02d}-of-{n_proc:02d}" if out_dir else None
            writer = StageWriter(sub, StepLabels, _stage_config(config, items, model_name)) if sub else None
            mine = _run_units(list(my_units), plan, items, continue_fn, config, writer)
        labelled = gather_object(mine)
    order = {it.rollout.rollout_id: i for i, it in enumerate(items)}
    return sorted(labelled, key=lambda lab: order[lab.rollout_id])
