"""Monte-Carlo step values (Setlur et al. 2024, "RL on Incorrect Synthetic Data Scales the Efficiency of LLM Math
Reasoning by Eight-Fold", §5 and Appendix).

For a rollout ``y = (y_1 … y_L)`` of problem ``x``, the value of step ``i`` is the chance that the rollout policy,
continuing after the prefix ``x ⊕ y_1:i``, reaches a correct final answer (checked by the same verifier as the
rollout). ``K`` continuations are sampled per prefix and turned into a value by the *estimator*:

- ``"best_of_k"`` (paper default): 1 if any of the K continuations is correct, else 0 — the value under the
  best-of-K policy ``BoK(π)`` as estimated from one draw of K samples;
- ``"mean"``: the success rate ``q̂`` (plain value of ``π``; for advantage-weighted variants);
- ``"bok_from_mean"``: ``1 − (1 − q̂)^bok_k`` (the best-of-``bok_k`` value implied by ``q̂``).

``prefix_value`` (``value(0)`` in the paper, ``value(-1)`` in ``StepLabels.advantages``) comes from K continuations of
the bare prompt. The *last* step's prefix is the whole completion, so its value is the rollout's reward (1 correct,
0 wrong): a complete wrong answer has value 0 at its last step, hence every wrong rollout has a pit.

First pit (critical step): ``"first_zero"`` — the first step whose value is 0; ``"first_min"`` — the first step
attaining the minimum value, if that minimum is below 1. On a wrong rollout with ``best_of_k`` both coincide. Labels:
steps before the pit are ``True`` (their value is > 0), the pit and every later step ``False`` (error propagation);
no pit → every step ``True``. ``first_error`` is the pit.

What is sampled, and what is not (``perf/mc_labeling.py`` measures each switch; defaults are the fastest exact set):

- **deduplication**: identical prefixes (same problem, same prefix) are valued once;
- **batching**: all prefixes of a work unit at one depth go through ONE ``continue_fn`` call, and the K samples of a
  prefix share one prefill of it (``share_prefill``: one KV cache repeated; vLLM: one request with ``n`` samples);
- ``stop_at_success`` (best-of-K only, exact): a best-of-K value is 1 as soon as one continuation is correct, so each
  prefix gets ``first_draw`` continuations first and the remaining ``K − first_draw`` only if none of those succeeded;
  only hopeless prefixes cost K. The values have the same distribution as with all K samples drawn;
- ``reuse_rollouts`` (best-of-K only): a verified-correct completion of the same problem that starts with a prefix —
  a correct rollout, or a correct continuation found earlier in the unit — proves that the policy can complete the
  prefix correctly, which is what a best-of-K value of 1 asserts: its value is 1 without sampling. A certificate
  never gives a false 1; it can only turn a 0 that K fresh samples would have given by chance (probability
  ``(1 − q)^K``) into the right 1, so values are not distributed as a fresh draw of K. (The rollout being labelled is
  not a sample of its own prefixes: it is wrong by selection. Prefixes are matched by text: with a BPE tokenizer
  the same text reached through other tokens counts as the same prefix.) Correct continuations are kept in
  ``StepLabels.continuations``: the chosen sides that shared-prefix pairs need (``mc_continuations``);
- ``early_stop`` (exact pit and labels): depth by depth, a rollout is not extended after its first zero; the values
  after the pit are then ``None`` (their labels are ``False`` either way);
- ``search="binary"`` (opt-in, approximate; OmegaPRM): bisect for the first zero between the prompt and the last step
  (known 0): O(log M) prefixes instead of up to M, exact when values never recover after a zero. Unvisited steps get
  ``None`` values; the pit and labels follow from the bisection;
- ``continue_from_ids``: a rollout that kept its generated token ids is continued from ``prompt ids + its ids up to
  the step's end`` (the largest token boundary inside the step), never from re-encoded text, which can give tokens
  the policy never generated.

The last step needs no generation; ``stop`` strings / ``max_new_tokens`` end continuations early. ``stats``
(``MonteCarloStats``) counts the work.

Resumability and determinism: rollouts are packed, whole problems at a time, into fixed *work units* of about
``unit_size`` rollouts; unit ``u`` is generated with seeds derived from ``seed·1_000_003 + u·1009`` and the call's
depth and round, so its labels do not depend on which other units ran before, in which process, or whether the run
was killed and resumed. With ``out_dir``, each finished unit is flushed as one shard of a ``negrl.io.StageWriter``
stage (manifest last).

Several processes (``accelerate launch``): units are split with ``PartialState().split_between_processes``; process
``r`` of ``n`` writes its stage under ``out_dir/proc-{r:02d}-of-{n:02d}/`` and the labels of all processes are gathered
(``accelerate.utils.gather_object``) and returned, in input order, by every process.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from negrl.generation.config import GenerationStats, Prompt, encode_prompts, format_prompt
from negrl.io import StageWriter, ids_digest
from negrl.processes import num_processes, process_state
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.steps.segment import segment
from negrl.verifiers import verify


# continue_fn(prompts, seed) -> one continuation text per prompt (the prompt itself not repeated). A prompt is text,
# or token ids when the rollout kept its ids; the K copies of one prefix are adjacent.
ContinueFn = Callable[[list[Prompt], int], list[str]]

ESTIMATORS = ("best_of_k", "mean", "bok_from_mean")
PIT_RULES = ("first_zero", "first_min")
SEARCHES = ("linear", "binary")


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
        early_stop: Depth-by-depth generation that skips a rollout's later prefixes after its first zero value
            (needs ``pit_rule="first_zero"``); their values are then ``None`` while their labels are ``False``.
        stop_at_success: Stop sampling a prefix at its first correct continuation (exact for ``best_of_k``; ``None``
            = on exactly when the estimator is ``best_of_k``).
        first_draw: Continuations per prefix in the first round when ``stop_at_success`` is on (the rest follow in
            one second round, only for prefixes without a success).
        reuse_rollouts: Certify a prefix (value 1) by a verified-correct completion of the same problem that starts
            with it (``best_of_k`` only; ``None`` = on exactly when the estimator is ``best_of_k``).
        search: ``"linear"`` (every prefix up to the pit) or ``"binary"`` (bisect for the first zero; approximate).
        share_prefill: Decode a prefix's samples from one prefill of it (HF backend).
        backend: ``"hf"`` or ``"vllm"`` (``model`` is then a ``vllm.LLM`` or a model path; a prefix's samples are one
            request with ``n`` samples, token-id prompts, automatic prefix caching).
        continue_from_ids: Continue rollouts that kept their token ids from those ids.
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
    early_stop: bool = True
    stop_at_success: bool | None = None
    first_draw: int = 1
    reuse_rollouts: bool | None = None
    search: str = "linear"
    share_prefill: bool = True
    backend: str = "hf"
    continue_from_ids: bool = True
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
        if self.search not in SEARCHES:
            raise ValueError(f"MonteCarloConfig.search: {self.search!r} is not one of {SEARCHES}")
        if self.k < 1 or self.unit_size < 1:
            raise ValueError("MonteCarloConfig.k and unit_size must be >= 1")
        if not 1 <= self.first_draw <= self.k:
            raise ValueError(f"MonteCarloConfig.first_draw must be in [1, k={self.k}], got {self.first_draw}")
        exact_bok = self.estimator == "best_of_k"
        for name in ("stop_at_success", "reuse_rollouts"):
            if getattr(self, name) is None:
                setattr(self, name, exact_bok)
            elif getattr(self, name) and not exact_bok:
                raise ValueError(f"MonteCarloConfig.{name} is exact for estimator='best_of_k' only, not {self.estimator!r}")
        if (self.early_stop or self.search == "binary") and self.pit_rule != "first_zero":
            raise ValueError("MonteCarloConfig.early_stop and search='binary' need pit_rule='first_zero'")


@dataclass
class MonteCarloStats:
    """What a labelling run cost (filled in place by ``label_monte_carlo(..., stats=...)``).

    Attributes:
        labelled: Rollouts labelled.
        prefixes: Distinct prefixes that got a value.
        certified: Of those, prefixes valued 1 by a correct completion, without sampling.
        continuations: Continuations sampled (and verified).
        calls: ``continue_fn`` calls.
        generation: Token counts of the default HF continuation function (prefill / decode / generated).
    """

    labelled: int = 0
    prefixes: int = 0
    certified: int = 0
    continuations: int = 0
    calls: int = 0
    generation: GenerationStats = field(default_factory=GenerationStats)


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


def token_cut(tokenizer: Any, ids: Sequence[int], text: str, end: int) -> int | None:
    """The largest ``n`` whose ``decode(ids[:n])`` is ``text[:m]`` for some ``m <= end`` (``None`` if the ids do not
    decode to ``text``'s prefixes, e.g. ids of another tokenizer)."""
    def decoded(n: int) -> str:
        return tokenizer.decode(list(ids[:n]), skip_special_tokens=True)

    n = bisect.bisect_right(range(len(ids) + 1), end, key=lambda j: len(decoded(j))) - 1
    while n > 0 and not text.startswith(decoded(n)):
        n -= 1  # a partial UTF-8 byte decodes to "\ufffd": step back to a clean boundary
    return n if text.startswith(decoded(n)) else None


@dataclass
class _Item:
    problem: Problem
    rollout: Rollout
    verdict: Verdict
    steps: list[Any]
    prefixes: list[str]  # [bare prompt "", after step 0, …, after step M-2]: the prefixes that need values
    prompts: list[Prompt]  # what continue_fn gets for each prefix (prompt text + prefix, or ids)


Key = tuple[str, str]  # (problem_id, prefix text)


class _UnitValues:
    """Lazily sampled values of the prefixes of one work unit (dedup, rounds, certificates)."""

    def __init__(self, items: list[_Item], rollouts_correct: dict[str, list[str]], continue_fn: ContinueFn, seed: int,
                 config: MonteCarloConfig, stats: MonteCarloStats) -> None:
        self.config, self.continue_fn, self.seed, self.stats = config, continue_fn, seed, stats
        self.problem = {it.problem.problem_id: it.problem for it in items}
        self.prompt_of: dict[Key, Prompt] = {}
        for it in items:
            for prefix, prompt in zip(it.prefixes, it.prompts):
                self.prompt_of.setdefault((it.problem.problem_id, prefix), prompt)
        self.correct = {pid: list(rollouts_correct.get(pid, [])) for pid in self.problem}
        self.values: dict[Key, float | None] = {}
        self.draws: dict[Key, list[bool | None]] = {}
        self.found: dict[Key, str] = {}  # a verified-correct continuation of the prefix

    def _certify(self, key: Key) -> bool:
        """Value 1 from a verified-correct completion of the problem that starts with the prefix, if there is one."""
        pid, prefix = key
        cont = next((t[len(prefix):] for t in self.correct[pid] if t.startswith(prefix) and len(t) > len(prefix)), None)
        if cont is None:
            return False
        self.values[key], self.found[key] = 1.0, cont
        self.stats.certified += 1
        return True

    def draw(self, asks: list[tuple[Key, int]], salt: int) -> None:
        """``n`` more continuations of each ``(key, n)``, in one ``continue_fn`` call; verified and recorded."""
        asks = [(k, n) for k, n in asks if n > 0]
        if not asks:
            return
        prompts = [self.prompt_of[k] for k, n in asks for _ in range(n)]
        conts = self.continue_fn(prompts, self.seed + 7919 * salt)
        if len(conts) != len(prompts):
            raise ValueError(f"continue_fn returned {len(conts)} continuations for {len(prompts)} prefixes")
        self.stats.calls += 1
        self.stats.continuations += len(conts)
        i = 0
        for k, n in asks:
            for c in conts[i : i + n]:
                ok = verify(self.problem[k[0]], k[1] + c).correct
                self.draws.setdefault(k, []).append(ok)
                if ok:
                    self.found.setdefault(k, c)
                    self.correct[k[0]].append(k[1] + c)  # certifies every prefix it starts with
            i += n

    def open_keys(self, keys: Sequence[Key]) -> list[Key]:
        """The keys without a value, after certificates (a key is counted as a valued prefix when first seen)."""
        todo = [k for k in dict.fromkeys(keys) if k not in self.values]
        self.stats.prefixes += sum(k not in self.draws for k in todo)
        if self.config.reuse_rollouts:
            todo = [k for k in todo if not self._certify(k)]
        return todo

    def evaluate(self, keys: Sequence[Key], salt: int) -> None:
        """Give every key a value (sampling only those without one and without a certificate)."""
        cfg = self.config
        todo = self.open_keys(keys)
        targets = [cfg.first_draw, cfg.k] if cfg.stop_at_success else [cfg.k]
        for r, target in enumerate(targets):
            self.draw([(k, target - len(self.draws.get(k, []))) for k in todo
                        if not (cfg.stop_at_success and any(self.draws.get(k, [])))], 2 * salt + r)  # fmt: skip
        for k in todo:
            self.values[k] = estimate_value(self.draws.get(k, []), cfg)


def _visit_linear(items: list[_Item], vals: _UnitValues) -> None:
    """Every prefix (no early stop), or each rollout's prefixes in order up to its first zero value.

    With early stop: the bare prompts and first step prefixes, then, per rollout, the next prefix without a value
    (prefixes valued already — certificates, a sibling's — are skipped), as long as the rollout has not met a zero.
    One ``evaluate`` (one or two calls) per depth: continuations of one depth have similar lengths, so a call does not
    keep decoding short ones while a long one finishes.
    """
    cfg = vals.config
    keys = [[(it.problem.problem_id, p) for p in it.prefixes] for it in items]
    if not items:
        return
    if not cfg.early_stop:
        vals.evaluate([k for ks in keys for k in ks], salt=0)
        return
    vals.evaluate([ks[0] for ks in keys] + [ks[1] for ks in keys if len(ks) > 1], salt=1)
    nxt = [1] * len(items)  # the step prefix each rollout values next (index 0 is the bare prompt)
    for salt in range(2, 10_000):
        ask = []
        for i, ks in enumerate(keys):
            while nxt[i] < len(ks) and ks[nxt[i]] in vals.values and vals.values[ks[nxt[i]]] != 0:
                nxt[i] += 1
            if nxt[i] < len(ks) and ks[nxt[i]] not in vals.values:
                ask.append(ks[nxt[i]])
        if not ask:
            return
        vals.evaluate(ask, salt)


def _visit_binary(items: list[_Item], vals: _UnitValues) -> None:
    """Bisect each rollout for its first zero among step values 0..M-1 (the last one is the reward, known)."""
    keys = [[(it.problem.problem_id, p) for p in it.prefixes] for it in items]
    # lo: first step whose value is not known > 0; hi: a step known (or assumed) to be 0.
    lo = [0] * len(items)
    hi = [len(it.steps) - 1 for it in items]
    vals.evaluate([ks[0] for ks in keys], salt=0)
    salt = 1
    while True:
        ask = {i: (lo[i] + hi[i]) // 2 for i in range(len(items)) if lo[i] < hi[i] and items[i].verdict.correct is False}
        if not ask:
            break
        vals.evaluate([keys[i][m + 1] for i, m in ask.items()], salt=salt)
        salt += 1
        for i, m in ask.items():
            if vals.values[keys[i][m + 1]] == 0:
                hi[i] = m
            else:
                lo[i] = m + 1


def _label_unit(items: list[_Item], vals: _UnitValues) -> list[StepLabels]:
    """Values of the prefixes the search visits, then pits and labels."""
    cfg = vals.config
    if cfg.search == "binary":  # correct rollouts (only_incorrect=False) have no zero to search for
        _visit_binary([it for it in items if not it.verdict.correct], vals)
        _visit_linear([it for it in items if it.verdict.correct], vals)
    else:
        _visit_linear(items, vals)
    out = []
    for it in items:
        pid = it.problem.problem_id
        values: list[float | None] = [vals.values.get((pid, p)) for p in it.prefixes[1:]]
        if it.steps:
            values.append(None if it.verdict.correct is None else float(it.verdict.correct))
        pit = find_pit(values, cfg.pit_rule)
        ends = [0] + [s.end for s in it.steps[:-1]]
        conts = {  # only where the prefix is the step boundary itself (a token may straddle it: see token_cut)
            str(i - 1): vals.found[(pid, p)] for i, (p, e) in enumerate(zip(it.prefixes, ends))
            if (pid, p) in vals.found and len(p) == e
        }
        out.append(
            StepLabels(
                rollout_id=it.rollout.rollout_id, steps=it.steps, values=values,
                labels=labels_from_pit(len(it.steps), pit), first_error=pit, source="mc",
                prefix_value=vals.values.get((pid, "")), detail=f"K={cfg.k} {cfg.estimator} {cfg.pit_rule} {cfg.search}",
                continuations=conts,
            )
        )
    return out


def model_continue_fn(
    model: Any, tokenizer: Any, config: MonteCarloConfig, stats: GenerationStats | None = None
) -> ContinueFn:
    """The default ``continue_fn``: ``negrl.generation.generate_samples`` (HF or vLLM) with the config's sampling.

    Adjacent copies of one prompt are sampled together (one prefill with ``share_prefill``); ``stats`` counts tokens.
    """
    from negrl.generation import GenerationConfig, generate_samples

    def continue_fn(prompts: list[Prompt], seed: int) -> list[str]:
        gen = GenerationConfig(
            temperature=config.temperature, top_p=config.top_p, max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size, stop=list(config.stop), seed=seed, backend=config.backend,
            show_progress=False,
        )
        unique: list[Prompt] = []
        counts: list[int] = []
        for p in prompts:
            if unique and p == unique[-1]:
                counts[-1] += 1
            else:
                unique.append(p)
                counts.append(1)
        groups = generate_samples(unique, counts, model, tokenizer, gen, share_prefill=config.share_prefill,
                                  stats=stats)  # fmt: skip
        return [g.text for group in groups for g in group]

    return continue_fn


def _prefixes(
    rollout: Rollout, steps: list[Any], prompt: str, tokenizer: Any, config: MonteCarloConfig
) -> tuple[list[str], list[Prompt]]:
    """The prefixes that need values and what the continuation function is given for each (text, or ids)."""
    ends = [0] + [s.end for s in steps[:-1]]
    ids = rollout.completion_ids if config.continue_from_ids and tokenizer is not None else None
    if ids:
        cuts = [token_cut(tokenizer, ids, rollout.completion, e) for e in ends]
        if all(c is not None for c in cuts):
            prompt_ids = encode_prompts([prompt], tokenizer)[0]
            texts = [tokenizer.decode(ids[:c], skip_special_tokens=True) for c in cuts]
            return texts, [prompt_ids + list(ids[:c]) for c in cuts]
    texts = [rollout.completion[:e] for e in ends]
    return texts, [prompt + t for t in texts]


def _select(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict], config: MonteCarloConfig,
    tokenizer: Any,
) -> tuple[list[_Item], dict[str, list[str]]]:
    """The rollouts to label, and each problem's verified-correct completions (the certificates)."""
    by_id = {p.problem_id: p for p in problems}
    verdict_of = {v.rollout_id: v for v in verdicts}
    items: list[_Item] = []
    correct: dict[str, list[str]] = {}
    for r in rollouts:
        v = verdict_of.get(r.rollout_id)
        if v is None:
            raise ValueError(f"label_monte_carlo: no verdict for rollout {r.rollout_id!r}")
        if r.problem_id not in by_id:
            raise ValueError(f"label_monte_carlo: rollout {r.rollout_id!r} has unknown problem {r.problem_id!r}")
        if v.correct:
            correct.setdefault(r.problem_id, []).append(r.completion)
        if v.correct is None or (config.only_incorrect and v.correct):
            continue
        p = by_id[r.problem_id]
        prompt = format_prompt(p.prompt, tokenizer, config.use_chat_template) if tokenizer is not None else p.prompt
        steps = segment(r.completion, config.segment_rule, min_chars=config.min_chars, max_steps=config.max_steps)
        texts, prompts = _prefixes(r, steps, prompt, tokenizer, config)
        items.append(_Item(problem=p, rollout=r, verdict=v, steps=steps, prefixes=texts, prompts=prompts))
    return items, correct


def _stage_config(config: MonteCarloConfig, items: list[_Item], model_name: str) -> dict[str, Any]:
    ids = ids_digest((it.rollout.rollout_id for it in items), length=16)
    cfg = asdict(config)
    cfg.pop("show_progress")
    return {**cfg, "model": model_name, "n_rollouts": len(items), "rollout_ids_sha1": ids}


def _run_units(
    units: list[int], plan: list[list[int]], items: list[_Item], correct: dict[str, list[str]],
    continue_fn: ContinueFn, config: MonteCarloConfig, writer: StageWriter | None, stats: MonteCarloStats,
) -> list[StepLabels]:
    done: dict[str, StepLabels] = {r.rollout_id: r for r in writer.records()} if writer else {}
    for u in tqdm(units, desc="mc-label", unit="unit", disable=not config.show_progress or len(units) < 2):
        unit_items = [items[i] for i in plan[u]]
        if all(it.rollout.rollout_id in done for it in unit_items):
            continue  # finished before an interruption
        vals = _UnitValues(unit_items, correct, continue_fn, config.seed * 1_000_003 + u * 1009, config, stats)
        labelled = _label_unit(unit_items, vals)
        stats.labelled += len(labelled)
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
    stats: MonteCarloStats | None = None,
) -> list[StepLabels]:
    """Monte-Carlo ``StepLabels(source="mc")`` for the selected rollouts (see the module docstring), in input order.

    Args:
        problems, rollouts, verdicts: Joined on ``problem_id`` / ``rollout_id``; every rollout needs a verdict.
            Verified-correct rollouts certify the prefixes they start with (``reuse_rollouts``), labelled or not.
        model, tokenizer: The rollout policy for continuations (ignored when ``continue_fn`` is given, except that
            the tokenizer formats prompts when ``use_chat_template`` is set and cuts rollouts' token ids).
        config: ``MonteCarloConfig`` (defaults: K=5, best-of-K, first zero, wrong rollouts only, the fastest exact
            sampling: early stop, stop at the first success, certificates, shared prefill, token-id prefixes).
        out_dir: Stage directory (resumable shards + manifest); ``None`` keeps everything in memory.
        continue_fn: ``continue_fn(prompts, seed) -> continuations``; replaces generation (tests, other backends).
            Must be deterministic in ``(prompts, seed)`` for resumption to be exact.
        stats: A ``MonteCarloStats`` to add this run's counts to (work done in this process, resumed units skipped).
    """
    config = config or MonteCarloConfig()
    stats = stats if stats is not None else MonteCarloStats()
    if continue_fn is None:
        if model is None or tokenizer is None:
            raise ValueError("label_monte_carlo needs a model and tokenizer, or a continue_fn")
        continue_fn = model_continue_fn(model, tokenizer, config, stats.generation)
    items, correct = _select(problems, rollouts, verdicts, config, tokenizer)
    plan = plan_units([it.rollout for it in items], config.unit_size)
    units = list(range(len(plan)))
    model_name = str(getattr(model, "name_or_path", "") or "")
    n_proc = num_processes()
    if n_proc == 1:
        writer = StageWriter(out_dir, StepLabels, _stage_config(config, items, model_name)) if out_dir else None
        labelled = _run_units(units, plan, items, correct, continue_fn, config, writer, stats)
    else:
        from accelerate.utils import gather_object

        state = process_state()
        with state.split_between_processes(units) as my_units:
            sub = Path(out_dir) / f"proc-{state.process_index:02d}-of-{n_proc:02d}" if out_dir else None
            writer = StageWriter(sub, StepLabels, _stage_config(config, items, model_name)) if sub else None
            mine = _run_units(list(my_units), plan, items, correct, continue_fn, config, writer, stats)
        labelled = gather_object(mine)
    order = {it.rollout.rollout_id: i for i, it in enumerate(items)}
    return sorted(labelled, key=lambda lab: order[lab.rollout_id])


def mc_continuations(
    step_labels: Sequence[StepLabels], rollouts: Sequence[Rollout]
) -> dict[tuple[str, str], list[str]]:
    """``(problem_id, prefix text) -> verified-correct continuations`` from Monte-Carlo labels (the chosen sides of
    shared-prefix pairs: ``negrl.builders.step_dpo_pairs(..., continuations=...)``)."""
    by_id = {r.rollout_id: r for r in rollouts}
    out: dict[tuple[str, str], list[str]] = {}
    for lab in step_labels:
        r = by_id.get(lab.rollout_id)
        if r is None:
            continue
        for step, cont in lab.continuations.items():
            i = int(step)
            prefix = "" if i < 0 else r.completion[: lab.steps[i].end]
            pool = out.setdefault((r.problem_id, prefix), [])
            if cont not in pool:
                pool.append(cont)
    return out
