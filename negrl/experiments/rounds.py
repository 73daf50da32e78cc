"""Iterated on-policy rounds over a fixed prompt pool: every arm samples from its own current policy, trains from it,
and is evaluated after each round (the regime of VinePPO, RestEM and Setlur et al.'s online code).

    pool of P prompts (fixed for the seed) ─┐
    round r, arm a:  π_a^{r-1} ─ sample S per prompt ─ verify ─ Monte-Carlo labels from π_a^{r-1} (arms that read
                     them) ─ the arm's registered method (negrl.experiments.methods) trains π_a^r from π_a^{r-1}
                     ─ evaluate π_a^r: held-out greedy / sampled, the training pool, pass@k

``π^0`` is the base for every arm, so round 1 data is shared by the arms that sample alike (the same samples: a
paired comparison). The DPO arms' reference policy is the previous round's policy (the one that sampled the data):
each round's LoRA adapter starts at zero on the merged ``π^{r-1}``, and DPO's reference is that model — on-policy
iterated DPO, as in VinePPO's DPO-positive and Setlur et al.'s ``online_dpo``. Every arm trains from its previous
weights (not from the base each round).

Compute accounting: each result row carries, per round and summed, the samples drawn, the Monte-Carlo
continuations and the tokens generated for the arm's data (labelling is charged only to arms whose method reads
step labels). ``match_samples: <arm>`` gives an arm (RFT at matched samples) ``ceil(C/P)`` extra samples per
prompt, where ``C`` is that arm's continuations in the same round: at least as many samples as the per-step arm
spent on labelling.

Layout under ``output_dir`` (every stage cached and resumable; a rerun reuses what is on disk):

    seed{s}/round0/eval/base.json                 the base, evaluated once
    seed{s}/round{r}/data/<shared|arm>/           problems, rollouts, verdicts, step_labels, cost.json, data/
    seed{s}/round{r}/models/<arm>/                the trained policy (merged) + adapter + done.json
    seed{s}/round{r}/eval/<arm>.json              held-out, pool and pass@k scores + the cost of the round
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.experiments.config import build, read_yaml
from negrl.experiments.config import write_resolved_config as write_config_file
from negrl.experiments.methods import METHODS, STEP_LABEL_METHODS, MethodSkipped
from negrl.experiments.pipeline import MethodContext, PipelineConfig, PipelineData, prepare_data, split_problems
from negrl.metrics import paired_difference, pass_at_k
from negrl.records import Problem


POSITIVES_ONLY = ("rft",)  # methods that train on verified-correct self-samples only


@dataclass
class ArmSpec:
    """One arm of a rounds experiment: a registered method, its options, and how it samples its data.

    Attributes:
        method: Key of ``negrl.experiments.methods.METHODS``.
        options: The method's options (as ``PipelineConfig.method_options[method]``).
        sampling: Overrides of the data sampling for this arm (``samples_per_prompt``, ``temperature``): e.g.
            confident negatives from low-temperature samples.
        match_samples: Name of an earlier arm whose Monte-Carlo continuations this arm gets as extra samples.
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    match_samples: str | None = None


@dataclass
class RoundsConfig:
    """A rounds experiment (``recipes/rounds.py``): a base, a fixed pool, R rounds, arms, seeds.

    Attributes:
        base_policy: Model directory of the base (``recipes/sft.py``; its ``problems/test`` is the held-out set).
        pool_size: P, the post-training prompts (fixed over the rounds of a seed; a fresh pool per seed).
        rounds: R.
        seeds: Seeds (each: its own pool, sampling, labelling and training seeds; arms paired within a seed).
        arms: Arm name → ``ArmSpec`` fields.
        train_options: Trainer options every arm starts from (its own ``options`` win). Default: warm-up over a
            tenth of each round's steps — a round of a few hundred rows is a few dozen steps, and a fixed 10-step
            warm-up would keep the learning rate below its value for most of it.
        samples_per_prompt / temperature / max_new_tokens / mc: Sampling and labelling of every arm's data.
        eval_samples: Sampled draws per held-out problem (and per pool prompt) at ``eval_temperature``.
        pass_k: The k of pass@k, measured with ``max(pass_k)`` samples on the first ``pass_k_problems`` held-out
            problems, after the base and after the last round (every round with ``pass_k_every_round``).
        eval_pool: Also measure greedy accuracy on the training pool (held-out vs pool: the overfitting picture).
        held_out: ``"base"``: the base's held-out split (``problems/test``, as the pipeline); ``"task"``: fresh
            problems of ``task`` / ``task_kwargs`` (a harder preset than the base was trained on), disjoint from
            the base's splits and the same for every seed.
    """

    base_policy: str = "runs/base/arithmetic"
    output_dir: str = "runs/rounds/arithmetic"
    task: str = "arithmetic"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    pool_size: int = 400
    n_test: int = 512
    rounds: int = 6
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    samples_per_prompt: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 256
    use_chat_template: bool = False
    mc: dict[str, Any] = field(default_factory=lambda: {"k": 5, "estimator": "best_of_k"})
    arms: dict[str, dict[str, Any]] = field(default_factory=lambda: {"rft": {"method": "rft"}})
    train_options: dict[str, Any] = field(default_factory=lambda: {"warmup_steps": 0.1})
    eval_samples: int = 2
    eval_temperature: float = 1.0
    pass_k: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    pass_k_problems: int = 128
    pass_k_every_round: bool = False
    eval_pool: bool = True
    held_out: str = "base"
    threads: int = 0
    show_progress: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> RoundsConfig:
        cfg = build(cls, d, where)
        cfg.arm_specs()  # validate the arms now, not after the first round
        return cfg

    def arm_specs(self) -> dict[str, ArmSpec]:
        specs: dict[str, ArmSpec] = {}
        for name, spec in self.arms.items():
            arm = build(ArmSpec, dict(spec), f"arms.{name}")
            if arm.method not in METHODS:
                raise ValueError(f"arms.{name}: unknown method {arm.method!r}; registered: {sorted(METHODS)}")
            if arm.match_samples is not None and arm.match_samples not in specs:
                raise ValueError(f"arms.{name}: match_samples={arm.match_samples!r} must name an arm listed before it")
            unknown = set(arm.sampling) - {"samples_per_prompt", "temperature"}
            if unknown:
                raise ValueError(f"arms.{name}.sampling: unknown key(s) {sorted(unknown)}; "
                                 "allowed: samples_per_prompt, temperature")
            specs[name] = arm
        if not specs:
            raise ValueError("arms: at least one arm is needed")
        return specs


def load_rounds_config(path: str | Path, **overrides: Any) -> RoundsConfig:
    d = read_yaml(path)
    d.update({k: v for k, v in overrides.items() if v is not None})
    return RoundsConfig.from_dict(d, str(path))


# ---------------------------------------------------------------------------------------------------------------
# One round of one arm
# ---------------------------------------------------------------------------------------------------------------


def data_key(arm: ArmSpec, r: int) -> str:
    """The data directory an arm samples into in round ``r``: ``shared`` in round 1 for arms that sample as the
    config does (the base's samples, labelled once), else the arm's own (its policy, or its own sampling)."""
    return "shared" if r == 1 and not arm.sampling and arm.match_samples is None else ""


def round_seed(seed: int, r: int) -> int:
    """The seed of round ``r`` of seed ``seed`` (sampling, labelling, LoRA init, data order)."""
    return seed * 1000 + r


def data_config(cfg: RoundsConfig, seed: int, r: int, policy: str, key: str, arm: ArmSpec,
                extra_samples: int = 0) -> PipelineConfig:
    """The ``PipelineConfig`` of one data directory: sampling from ``policy`` into ``round{r}/data/<key>``."""
    return PipelineConfig(
        base_policy=policy, output_dir=str(Path(cfg.output_dir) / f"seed{seed}" / f"round{r}" / "data"),
        run_subdir=key, task=cfg.task, task_kwargs=cfg.task_kwargs, n_prompts=cfg.pool_size, n_test=cfg.n_test,
        seed=round_seed(seed, r),
        samples_per_prompt=arm.sampling.get("samples_per_prompt", cfg.samples_per_prompt) + extra_samples,
        temperature=arm.sampling.get("temperature", cfg.temperature), max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, use_chat_template=cfg.use_chat_template, mc=dict(cfg.mc), methods=[arm.method],
        method_options={}, eval_samples=cfg.eval_samples, threads=cfg.threads, show_progress=cfg.show_progress,
    )


def data_cost(data: PipelineData, pcfg: PipelineConfig, labelled: bool, mc_stats: Any) -> dict[str, Any]:
    """Samples, continuations and generated tokens of a data directory (``cost.json``, written once)."""
    path = pcfg.run_dir / "cost.json"
    if path.exists():
        cost = json.loads(path.read_text(encoding="utf-8"))
        if cost.get("labelled") or not labelled:
            return cost
    sample_tokens = sum(len(r.completion_ids) if r.completion_ids is not None else len(r.completion)
                        for r in data.rollouts)
    cost = {"samples": len(data.rollouts), "sample_tokens": sample_tokens, "labelled": labelled,
            "mc_continuations": mc_stats.continuations if labelled else 0,
            "mc_tokens": mc_stats.generation.generated_tokens if labelled else 0,
            "mc_complete_run": mc_stats.labelled == sum(1 for sl in data.step_labels) if labelled else True}
    path.write_text(json.dumps(cost, indent=2), encoding="utf-8")
    return cost


def arm_cost(cost: dict[str, Any], uses_labels: bool) -> dict[str, int]:
    """What one arm is charged for its data (labelling only when its method reads the labels)."""
    conts = cost["mc_continuations"] if uses_labels else 0
    tokens = cost["sample_tokens"] + (cost["mc_tokens"] if uses_labels else 0)
    return {"samples": cost["samples"], "mc_continuations": conts, "generated_tokens": tokens,
            "samples_plus_continuations": cost["samples"] + conts}


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: held-out, the training pool, pass@k
# ---------------------------------------------------------------------------------------------------------------


def evaluate_round(cfg: RoundsConfig, model_dir: str, test: list[Problem], pool: list[Problem], path: Path,
                   seed: int, with_pass_k: bool) -> dict[str, Any]:
    """Scores of one policy (cached in ``path``): held-out greedy / sampled, pool greedy / sampled, pass@k."""
    from negrl.evaluation import evaluate_policy
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.modeling import load_policy
    from negrl.verifiers import verify_rollouts

    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if not with_pass_k or "pass_k" in cached:
            return cached
    model, tokenizer = load_policy(model_dir)
    kw = {"max_new_tokens": cfg.max_new_tokens, "samples": cfg.eval_samples, "temperature": cfg.eval_temperature,
          "batch_size": cfg.batch_size, "use_chat_template": cfg.use_chat_template}
    ev = evaluate_policy(test, model, tokenizer, seed=seed, **kw)
    out: dict[str, Any] = {"model_dir": model_dir, "greedy": ev.greedy.value, "sampled": ev.sampled.value,
                           "n": ev.greedy.total}
    if cfg.eval_pool:  # greedy on the training pool: the overfitting picture (held-out vs pool)
        greedy = GenerationConfig(temperature=0.0, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                                  use_chat_template=cfg.use_chat_template, show_progress=False)
        verdicts = verify_rollouts(pool, generate_rollouts(pool, model, tokenizer, greedy))
        out["pool_greedy"] = sum(bool(v.correct) for v in verdicts) / len(verdicts)
    if with_pass_k:
        n = max(cfg.pass_k)
        probs = test[: cfg.pass_k_problems]
        gen = GenerationConfig(num_samples=n, temperature=cfg.eval_temperature, max_new_tokens=cfg.max_new_tokens,
                               batch_size=cfg.batch_size, seed=seed + 2, use_chat_template=cfg.use_chat_template,
                               show_progress=cfg.show_progress)
        rollouts = generate_rollouts(probs, model, tokenizer, gen)
        correct: dict[str, int] = {p.problem_id: 0 for p in probs}
        for r, v in zip(rollouts, verify_rollouts(probs, rollouts), strict=True):
            correct[r.problem_id] += bool(v.correct)
        out["pass_k"] = {str(k): sum(pass_at_k(n, c, k) for c in correct.values()) / len(correct)
                         for k in cfg.pass_k}
        out["pass_k_problems"] = len(probs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


def rounds_splits(cfg: RoundsConfig, base_pcfg: PipelineConfig) -> tuple[list[Problem], list[Problem]]:
    """(pool, held-out) of one seed: the pipeline's split, or fresh task problems (``held_out: task``)."""
    if cfg.held_out == "base":
        return split_problems(base_pcfg)
    if cfg.held_out != "task":
        raise ValueError(f"held_out must be 'base' or 'task', got {cfg.held_out!r}")
    from negrl.io import is_complete, read_stage
    from negrl.tasks import get_task

    task = get_task(cfg.task, **cfg.task_kwargs)
    exclude = {p.problem_id for split in ("train", "test") if is_complete(Path(cfg.base_policy) / "problems" / split)
               for p in read_stage(Path(cfg.base_policy) / "problems" / split, Problem)}
    test = task.generate_problems(cfg.n_test, seed=10_000, exclude=exclude)
    pool = task.generate_problems(cfg.pool_size, seed=1000 + base_pcfg.seed,
                                  exclude=exclude | {p.problem_id for p in test})
    return pool, test


def run_seed(cfg: RoundsConfig, seed: int) -> dict[str, Any]:
    """Every round of every arm for one seed; returns ``{"base": eval, "arms": {arm: [round rows]}}``."""
    from negrl.steps.monte_carlo import MonteCarloStats

    specs = cfg.arm_specs()
    root = Path(cfg.output_dir) / f"seed{seed}"
    base_pcfg = PipelineConfig(base_policy=cfg.base_policy, task=cfg.task, task_kwargs=cfg.task_kwargs,
                               n_prompts=cfg.pool_size, n_test=cfg.n_test, seed=seed)
    splits = rounds_splits(cfg, base_pcfg)  # the pool and the held-out set of this seed, for every round and arm
    pool, test = splits
    base_eval = evaluate_round(cfg, cfg.base_policy, test, pool, root / "round0" / "eval" / "base.json", seed,
                               with_pass_k=True)
    policy = {name: cfg.base_policy for name in specs}
    scores = {name: base_eval for name in specs}  # the scores of each arm's current policy
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in specs}
    for r in range(1, cfg.rounds + 1):
        round_costs: dict[str, dict[str, Any]] = {}
        for name, arm in specs.items():
            uses_labels = arm.method in STEP_LABEL_METHODS
            key = data_key(arm, r) or name
            extra = 0
            if arm.match_samples is not None:  # listed after its reference arm (checked by arm_specs)
                extra = math.ceil(round_costs[arm.match_samples]["mc_continuations"] / cfg.pool_size)
            pcfg = data_config(cfg, seed, r, policy[name], key, arm, extra)
            # Shared round-1 data is labelled when any arm sharing it reads labels (labelled once, reused).
            label = uses_labels or (key == "shared" and any(
                a.method in STEP_LABEL_METHODS for a in specs.values() if data_key(a, 1)))
            t0 = time.time()
            stats = MonteCarloStats()
            data = prepare_data(pcfg, splits=splits, label=label, mc_stats=stats)
            cost = arm_cost(data_cost(data, pcfg, label, stats), uses_labels)
            round_costs[name] = cost
            out = root / f"round{r}" / "models" / name
            try:
                model_dir = str(out) if (out / "done.json").exists() else METHODS[arm.method](
                    MethodContext(pcfg, data, {**cfg.train_options, **arm.options}, out, pcfg.seed))
            except MethodSkipped as skip:
                # Nothing to train on this round (no pair, no positive): the policy stays, and samples again next
                # round with another seed; its scores are the current policy's.
                ev, model_dir, trained, build = scores[name], policy[name], False, skip.build
                print(f"[rounds] seed {seed} round {r} {name}: skipped: {skip.reason}", flush=True)
            else:
                trained = True
                build = json.loads((Path(model_dir) / "done.json").read_text(encoding="utf-8")).get("build")
            last = r == cfg.rounds
            if trained or (last and "pass_k" not in ev):
                ev = evaluate_round(cfg, model_dir, test, pool, root / f"round{r}" / "eval" / f"{name}.json", seed,
                                    with_pass_k=last or cfg.pass_k_every_round)
            rows[name].append({"round": r, **ev, "trained": trained, "cost": cost, "build": build,
                               "data_sample_accuracy": _sample_accuracy(data), "seconds": round(time.time() - t0, 1)})
            policy[name], scores[name] = model_dir, ev
            print(f"[rounds] seed {seed} round {r} {name}: held-out greedy {ev['greedy']:.3f} sampled "
                  f"{ev['sampled']:.3f} | pool {ev.get('pool_greedy', float('nan')):.3f} | cost {cost}", flush=True)
    return {"seed": seed, "base": base_eval, "arms": rows}


def _sample_accuracy(data: PipelineData) -> float:
    known = [v.correct for v in data.verdicts if v.correct is not None]
    return sum(known) / max(1, len(known))


def run_rounds(cfg: RoundsConfig) -> dict[int, dict[str, Any]]:
    """``run_seed`` for every seed (the resolved config is written first); returns ``{seed: run}``."""
    import os

    import torch

    from negrl.modeling import check_local_model_path

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    check_local_model_path(cfg.base_policy)
    out = Path(cfg.output_dir)
    write_config_file(out / "config.yaml", cfg)
    runs = {}
    for seed in cfg.seeds:
        runs[seed] = run_seed(cfg, seed)
        (out / f"seed{seed}" / "result.json").write_text(json.dumps(runs[seed], indent=2), encoding="utf-8")
    return runs


# ---------------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------------


def _final(run: dict[str, Any], arm: str) -> dict[str, Any] | None:
    rs = run["arms"].get(arm, [])
    return rs[-1] if rs else None


def best_positive_arm(runs: dict[int, dict[str, Any]], cfg: RoundsConfig, metric: str = "greedy") -> str | None:
    """The positives-only arm (method in ``POSITIVES_ONLY``) with the highest final-round mean of ``metric``."""
    specs = cfg.arm_specs()
    best, best_v = None, -1.0
    for name, arm in specs.items():
        if arm.method not in POSITIVES_ONLY:
            continue
        finals = [_final(run, name) for run in runs.values()]
        if any(f is None for f in finals):
            continue
        v = sum(f[metric] for f in finals) / len(finals)  # type: ignore[index]
        if v > best_v:
            best, best_v = name, v
    return best


def paired_arm_differences(runs: dict[int, dict[str, Any]], cfg: RoundsConfig,
                           metric: str = "greedy") -> dict[str, Any]:
    """``{arm: PairedDifference}`` of every other arm's final-round ``metric`` against the best positives-only arm."""
    ref = best_positive_arm(runs, cfg, metric)
    if ref is None:
        return {}
    seeds = sorted(runs)
    ref_vals = [_final(runs[s], ref)[metric] for s in seeds]  # type: ignore[index]
    return {name: paired_difference([_final(runs[s], name)[metric] for s in seeds], ref_vals)  # type: ignore[index]
            for name in cfg.arm_specs() if name != ref and all(_final(runs[s], name) for s in seeds)}


def results_table(runs: dict[int, dict[str, Any]], cfg: RoundsConfig, metric: str = "greedy") -> str:
    """Final-round table: every arm's held-out / pool accuracy, pass@k, cost, and the paired difference against
    the best positives-only arm (95 % t-interval over seeds)."""
    seeds = sorted(runs)
    ref = best_positive_arm(runs, cfg, metric)
    ks = [str(k) for k in cfg.pass_k]
    head = (f"| arm | held-out {metric} % | Δ vs {ref or '-'} (95 % CI) | Δ vs base | held-out sampled % | "
            "pool greedy % | " + " | ".join(f"pass@{k}" for k in ks)
            + " | samples + MC conts (all rounds) | tokens (all rounds) |")
    lines = [head, "|" + " --- |" * (9 + len(ks) - 1)]
    base = [runs[s]["base"] for s in seeds]
    ref_vals = [_final(runs[s], ref)[metric] for s in seeds] if ref else None  # type: ignore[index]
    base_vals = [b[metric] for b in base]
    lines.append(_row("base (round 0)", base, ref_vals, ks, metric, None, None))
    for name in cfg.arm_specs():
        finals = [_final(runs[s], name) for s in seeds]
        if any(f is None for f in finals):
            lines.append(f"| {name} | not run |" + " - |" * (7 + len(ks)))
            continue
        cost = [_total_cost(runs[s]["arms"][name]) for s in seeds]
        trained = sum(row.get("trained", True) for s in seeds for row in runs[s]["arms"][name]) / len(seeds)
        label = name if trained == cfg.rounds else f"{name} (trained {trained:g} of {cfg.rounds} rounds)"
        lines.append(_row(label, finals, ref_vals if name != ref else None, ks, metric, cost,  # type: ignore[arg-type]
                          base_vals))
    lines.append(f"\n(seeds {seeds}; {cfg.rounds} rounds on a pool of {cfg.pool_size} prompts; held-out n = "
                 f"{base[0]['n']}; Δ: paired by seed, mean and t-interval in points)")
    return "\n".join(lines)


def _total_cost(rows: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in rows:
        for k, v in row["cost"].items():
            total[k] = total.get(k, 0) + v
    return total


def _row(name: str, evs: list[dict[str, Any]], ref: list[float] | None, ks: list[str], metric: str,
         cost: list[dict[str, int]] | None, base: list[float] | None) -> str:
    def mean(key: str, sub: str | None = None) -> str:
        vals = [(e[key][sub] if sub else e[key]) for e in evs if key in e]
        return f"{100 * sum(vals) / len(vals):.1f}" if vals else "-"

    delta = paired_difference([e[metric] for e in evs], ref).format() if ref is not None else "-"
    vs_base = paired_difference([e[metric] for e in evs], base).format() if base is not None else "-"
    c = ("-" if cost is None else
         f"{sum(x['samples_plus_continuations'] for x in cost) // len(cost)}")
    t = "-" if cost is None else f"{sum(x['generated_tokens'] for x in cost) // len(cost)}"
    passk = " | ".join(mean("pass_k", k) for k in ks)
    return f"| {name} | {mean(metric)} | {delta} | {vs_base} | {mean('sampled')} | {mean('pool_greedy')} | {passk} | {c} | {t} |"


def plot_rounds(runs: dict[int, dict[str, Any]], cfg: RoundsConfig, path: Path, metric: str = "greedy") -> Path:
    """Three panels: held-out accuracy per round, held-out vs training-pool accuracy, pass@k after the last round."""
    import matplotlib.pyplot as plt

    from negrl.experiments.figures import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    seeds = sorted(runs)
    base = [runs[s]["base"] for s in seeds]
    for name in cfg.arm_specs():
        xs, ys, lo, hi, pool = [0], [], [], [], []
        per_round = [runs[s]["arms"][name] for s in seeds]
        vals0 = [b[metric] for b in base]
        ys.append(sum(vals0) / len(vals0))
        lo.append(ys[0]), hi.append(ys[0])
        pool.append(sum(b.get("pool_greedy", 0) for b in base) / len(base))
        for r in range(1, cfg.rounds + 1):
            got = [next((row for row in rs if row["round"] == r), None) for rs in per_round]
            if any(g is None for g in got):
                break
            v = [g[metric] for g in got]  # type: ignore[index]
            m = sum(v) / len(v)
            sd = (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
            xs.append(r), ys.append(m), lo.append(m - sd), hi.append(m + sd)
            pool.append(sum(g.get("pool_greedy", 0) for g in got) / len(got))  # type: ignore[union-attr]
        line = axes[0].plot(xs, [100 * y for y in ys], marker="o", label=name)[0]
        axes[0].fill_between(xs, [100 * y for y in lo], [100 * y for y in hi], alpha=0.15, color=line.get_color())
        axes[1].plot([100 * p for p in pool], [100 * y for y in ys], marker="o", color=line.get_color(), label=name)
        finals = [_final(runs[s], name) for s in seeds]
        if all(f is not None and "pass_k" in f for f in finals):
            ks = cfg.pass_k
            axes[2].plot(ks, [100 * sum(f["pass_k"][str(k)] for f in finals) / len(finals) for k in ks],  # type: ignore[index]
                         marker="o", color=line.get_color(), label=name)
    if all("pass_k" in b for b in base):
        axes[2].plot(cfg.pass_k, [100 * sum(b["pass_k"][str(k)] for b in base) / len(base) for k in cfg.pass_k],
                     marker="x", color="black", linestyle="--", label="base")
    axes[0].set(xlabel="round", ylabel=f"held-out {metric} %", title="held-out accuracy per round (±1 sd over seeds)")
    axes[1].set(xlabel="training-pool greedy %", ylabel=f"held-out {metric} %",
                title="held-out vs training pool (round 0 → R)")
    axes[2].set(xscale="log", xlabel="k", ylabel="pass@k %", title=f"pass@k after round {cfg.rounds}")
    axes[0].set_xticks(range(cfg.rounds + 1))
    axes[2].set_xticks(cfg.pass_k, [str(k) for k in cfg.pass_k])
    axes[2].minorticks_off()
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
