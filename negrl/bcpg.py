"""BCPG-NSA end to end: sample → verify → label the steps of negatives → build rows → train (LoRA), and rounds.

One *round* (``run_round``) from a policy directory:

    problems ─ generate (G per problem, behaviour policy) ─▶ Rollout ─ verify ─▶ Verdict
        ─ build_bcpg_samples (mixed groups, r − r̄, log π_ref) ─▶ BCPGSample
        ─ annotator (StepLabels of the negatives) ─▶ mined correct steps ─ bcpg_dataset(β) ─▶ BCPGNSATrainer (LoRA)
        ─▶ merged policy directory + held-out evaluation

Every stage is cached on disk under the round directory (``negrl.io`` stages: a rerun reuses finished stages and
resumes interrupted ones). ``run_rounds`` repeats rounds, each from the previous round's policy (which is then the
behaviour policy of the next round's data, as in the paper's iterations).

Annotators (``ANNOTATORS``; the step-correctness sources live in ``negrl.steps``): ``"consensus"`` (the paper:
LLM judge and PRM, rule ``and``; sources and rule configurable), ``"mc"`` (Monte-Carlo values), ``"prm"``,
``"judge"``, and ``"oracle"`` (the embedded task's exact checker, for ablations only).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from negrl.builders.bcpg import (
    BCPGDataConfig,
    BCPGSample,
    bcpg_dataset,
    build_bcpg_samples,
    mine_correct_steps,
    mining_stats,
)
from negrl.generation import GenerationConfig, generate_rollouts
from negrl.io import StageError, cached_stage, ids_digest, read_stage
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.verifiers import verify_rollouts


@dataclass
class BCPGRunConfig:
    """What one BCPG-NSA round samples, how negatives are labelled, and how it is evaluated (YAML / CLI fields).

    Problems come either from an embedded task (``task``; post-training problems are drawn disjoint from the base
    policy's ``problems/train`` and ``problems/test`` stages when they exist) or from a benchmark loader
    (``benchmark``, ``negrl.benchmarks.load_benchmark``).
    """

    policy: str = field(default="runs/base/arithmetic", metadata={"help": "Policy directory / hub id / 'smollm2'."})
    task: str = field(default="arithmetic", metadata={"help": "Embedded task (ignored when benchmark is set)."})
    task_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "Embedded task knobs."})
    benchmark: str | None = field(default=None, metadata={"help": "negrl.benchmarks name, e.g. 'math'."})
    benchmark_path: str | None = field(default=None, metadata={"help": "Local data path of the benchmark."})
    benchmark_split: str = field(default="train", metadata={"help": "Split the post-training prompts come from."})
    eval_benchmark: str | None = field(default=None, metadata={"help": "Benchmark for held-out eval, e.g. math500."})
    n_problems: int = field(default=512, metadata={"help": "Post-training problems per round."})
    problem_seed: int = field(default=1, metadata={"help": "Seed of the post-training problems (embedded task)."})
    num_samples: int = field(default=8, metadata={"help": "G: samples per problem (paper: 32)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (paper: 0.7)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Generation cap."})
    gen_batch_size: int = field(default=256, metadata={"help": "Sequences per generate call."})
    backend: str = field(default="hf", metadata={"help": "'hf' or 'vllm'."})
    use_chat_template: bool = field(default=False, metadata={"help": "Wrap prompts in the chat template."})
    annotator: str = field(default="consensus", metadata={"help": "consensus | mc | prm | judge | oracle."})
    consensus_sources: list[str] = field(default_factory=lambda: ["judge", "prm"])
    consensus_rule: str = field(default="and", metadata={"help": "and (paper) | or | vote."})
    segment_rule: str = field(default="lines", metadata={"help": "negrl.steps.segment rule."})
    mc_k: int = field(default=4, metadata={"help": "Monte-Carlo continuations per step prefix."})
    prm_model: str | None = field(default=None, metadata={"help": "Trained PRM directory (annotator prm)."})
    prm_threshold: float = field(default=0.5, metadata={"help": "PRM step score threshold λ."})
    judge_model: str | None = field(default=None, metadata={"help": "Judge LM (default: the policy itself)."})
    logp_batch_size: int = field(default=64, metadata={"help": "Rows per forward pass for behaviour log-probs."})
    beta: float = field(default=0.5, metadata={"help": "β on mined correct steps of negatives (paper: 0.5)."})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    eval_problems: int = field(default=512, metadata={"help": "Held-out problems evaluated (0 = skip)."})
    eval_samples: int = field(default=2, metadata={"help": "Sampled (T=1) draws per held-out problem."})
    rounds: int = field(default=1, metadata={"help": "Rounds of generate → label → train (bcpg_iterate)."})
    threads: int = field(default=0, metadata={"help": "torch threads (0 = leave as is)."})


# --------------------------------------------------------------------------------------------------- problems


def _base_problem_ids(policy: str) -> tuple[set[str], list[Problem]]:
    """Ids of the base policy's train + test problems (to exclude) and its test problems (held out)."""
    root, test = Path(policy), []
    seen: set[str] = set()
    for split in ("train", "test"):
        try:
            probs = read_stage(root / "problems" / split, Problem)
        except (StageError, FileNotFoundError):
            continue
        seen |= {p.problem_id for p in probs}
        test = probs if split == "test" else test
    return seen, test


def load_problems(cfg: BCPGRunConfig, seed_offset: int = 0) -> tuple[list[Problem], list[Problem]]:
    """``(post-training problems, held-out problems)`` for a round; never overlapping."""
    if cfg.benchmark:
        from negrl.benchmarks import load_benchmark

        train = load_benchmark(cfg.benchmark, path=cfg.benchmark_path, split=cfg.benchmark_split,
                               limit=cfg.n_problems)
        held = load_benchmark(cfg.eval_benchmark, limit=cfg.eval_problems) if cfg.eval_benchmark else []
        return train, held
    from negrl.tasks import get_task

    exclude, held = _base_problem_ids(cfg.policy)
    task = get_task(cfg.task, **cfg.task_kwargs)
    if not held:
        held = task.generate_problems(cfg.eval_problems, seed=10_000 + cfg.problem_seed, exclude=exclude)
        exclude |= {p.problem_id for p in held}
    train = task.generate_problems(cfg.n_problems, seed=cfg.problem_seed + seed_offset, exclude=exclude)
    return train, held[: cfg.eval_problems]


# --------------------------------------------------------------------------------------------------- sampling


def sample_and_verify(
    problems: Sequence[Problem], model: Any, tokenizer: Any, cfg: BCPGRunConfig, seed: int, out_dir: Path
) -> tuple[list[Rollout], list[Verdict]]:
    """G samples per problem from the behaviour policy and their verdicts, cached as stages under ``out_dir``."""
    gen = GenerationConfig(num_samples=cfg.num_samples, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                           batch_size=cfg.gen_batch_size, seed=seed, backend=cfg.backend,
                           use_chat_template=cfg.use_chat_template)
    # The problems' ids are part of the key: another problem set in the same directory is refused, not reused.
    stage_cfg = {**dataclasses.asdict(gen), "n_problems": len(problems),
                 "problems": ids_digest(p.problem_id for p in problems)}
    rollouts = cached_stage(out_dir / "rollouts", Rollout, lambda: generate_rollouts(problems, model, tokenizer, gen),
                            stage_cfg)
    verdicts = cached_stage(out_dir / "verdicts", Verdict, lambda: verify_rollouts(list(problems), rollouts),
                            stage_cfg)
    return rollouts, verdicts


# --------------------------------------------------------------------------------------------------- annotators


@dataclass
class LabelContext:
    """Everything an annotator may need; ``rollouts`` are the negatives to label."""

    problems: list[Problem]
    rollouts: list[Rollout]
    verdicts: list[Verdict]
    model: Any
    tokenizer: Any
    cfg: BCPGRunConfig
    seed: int
    out_dir: Path
    precomputed: dict[str, list[StepLabels]] = field(default_factory=dict)  # source → labels already at hand


def _label_oracle(ctx: LabelContext) -> list[StepLabels]:
    from negrl.steps.judge import OracleJudge

    return OracleJudge().label(ctx.problems, ctx.rollouts, rule=ctx.cfg.segment_rule)


def _label_mc(ctx: LabelContext) -> list[StepLabels]:
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo

    mc = MonteCarloConfig(k=ctx.cfg.mc_k, max_new_tokens=ctx.cfg.max_new_tokens, seed=ctx.seed,
                          segment_rule=ctx.cfg.segment_rule, use_chat_template=ctx.cfg.use_chat_template,
                          batch_size=ctx.cfg.gen_batch_size, show_progress=False)
    units = ctx.out_dir / f"{_stage_name('mc', source_config('mc', ctx))}-units"  # its resumable work units
    return label_monte_carlo(ctx.problems, ctx.rollouts, ctx.verdicts, ctx.model, ctx.tokenizer, mc, out_dir=units)


def _label_prm(ctx: LabelContext) -> list[StepLabels]:
    from negrl.steps.prm import PRMScorer

    if not ctx.cfg.prm_model:
        raise ValueError("annotator 'prm' needs prm_model (a PRM saved by negrl.steps.prm.PRMScorer)")
    scorer = PRMScorer.from_pretrained(ctx.cfg.prm_model, threshold=ctx.cfg.prm_threshold)
    return scorer.label(ctx.problems, ctx.rollouts, rule=ctx.cfg.segment_rule)


def _label_judge(ctx: LabelContext) -> list[StepLabels]:
    from negrl.steps.judge import LLMJudge

    if ctx.cfg.judge_model:
        from negrl.modeling import load_policy

        model, tokenizer = load_policy(ctx.cfg.judge_model)
    else:
        model, tokenizer = ctx.model, ctx.tokenizer
    return LLMJudge(model, tokenizer).label(ctx.problems, ctx.rollouts, rule=ctx.cfg.segment_rule)


SOURCES: dict[str, Callable[[LabelContext], list[StepLabels]]] = {
    "oracle": _label_oracle,
    "mc": _label_mc,
    "prm": _label_prm,
    "judge": _label_judge,
}
ANNOTATORS = ("consensus", *SOURCES)


def source_config(source: str, ctx: LabelContext) -> dict[str, Any]:
    """The settings that decide a source's labels: they key its cached stage (so a changed setting relabels)."""
    cfg = ctx.cfg
    own = {
        "oracle": {},
        "mc": {"mc_k": cfg.mc_k, "max_new_tokens": cfg.max_new_tokens, "seed": ctx.seed,
               "use_chat_template": cfg.use_chat_template},
        "prm": {"prm_model": cfg.prm_model, "prm_threshold": cfg.prm_threshold},
        "judge": {"judge_model": cfg.judge_model or "<the policy>"},
    }[source]
    return {"source": source, "segment_rule": cfg.segment_rule, "n": len(ctx.rollouts),
            "rollouts": ids_digest(r.rollout_id for r in ctx.rollouts), **own}


def _stage_name(source: str, config: dict[str, Any]) -> str:
    """``labels-{source}-{digest of its settings}``: sources with other settings (variants) never share a stage."""
    return f"labels-{source}-{ids_digest([json.dumps(config, sort_keys=True)])}"


def label_source(source: str, ctx: LabelContext) -> list[StepLabels]:
    """Labels of one source (``ctx.precomputed`` first), cached as the stage ``out_dir/labels-{source}-{digest}``.

    The digest is of ``source_config`` (the source's own settings and the negatives' ids), so changing a setting
    (``prm_threshold``, ``judge_model``, ``mc_k``, ...) labels afresh instead of reusing stale labels. Not in the key:
    the *contents* of a model directory retrained in place (``prm_model``, the policy the judge runs on).
    """
    if source in ctx.precomputed:
        return ctx.precomputed[source]
    if source not in SOURCES:
        raise ValueError(f"unknown label source {source!r}; expected one of {list(SOURCES)}")
    config = source_config(source, ctx)
    return cached_stage(ctx.out_dir / _stage_name(source, config), StepLabels, lambda: SOURCES[source](ctx), config)


def annotate(ctx: LabelContext) -> list[StepLabels]:
    """Step labels of the negatives from ``cfg.annotator`` (a single source, or the consensus of several)."""
    name = ctx.cfg.annotator
    if name in SOURCES:
        return label_source(name, ctx)
    if name != "consensus":
        raise ValueError(f"unknown annotator {name!r}; expected one of {ANNOTATORS}")
    from negrl.steps.consensus import combine_labels

    unknown = set(ctx.cfg.consensus_sources) - set(SOURCES)
    if unknown or not ctx.cfg.consensus_sources:
        raise ValueError(f"consensus_sources {ctx.cfg.consensus_sources} must be a non-empty subset of {list(SOURCES)}")
    per_source = [label_source(s, ctx) for s in ctx.cfg.consensus_sources]
    return combine_labels(per_source, rule=ctx.cfg.consensus_rule)


# --------------------------------------------------------------------------------------------------- one round


@dataclass
class RoundData:
    """The behaviour policy's data of one round: problems, samples and verdicts, BCPG samples (with log π_ref)."""

    problems: list[Problem]
    held_out: list[Problem]
    rollouts: list[Rollout]
    verdicts: list[Verdict]
    samples: list[BCPGSample]


def prepare_data(cfg: BCPGRunConfig, model: Any, tokenizer: Any, seed: int, out_dir: Path,
                 round_index: int = 0, max_length: int | None = 1024) -> RoundData:
    """Sample, verify and build BCPG samples (behaviour log-probs from ``model``), all cached under ``out_dir``."""
    problems, held = load_problems(cfg, seed_offset=1000 * round_index)
    rollouts, verdicts = sample_and_verify(problems, model, tokenizer, cfg, seed, out_dir)
    data_cfg = BCPGDataConfig(max_length=max_length, use_chat_template=cfg.use_chat_template,
                              logp_batch_size=cfg.logp_batch_size)
    samples = build_bcpg_samples(problems, rollouts, verdicts, model, tokenizer, data_cfg, out_dir / "samples")
    return RoundData(problems, held, rollouts, verdicts, samples)


def mine(data: RoundData, cfg: BCPGRunConfig, model: Any, tokenizer: Any, seed: int, out_dir: Path,
         max_length: int | None = 1024) -> tuple[list[BCPGSample], dict[str, float]]:
    """Label the negatives with ``cfg.annotator``, mine their correct steps; stats against the exact checker."""
    neg_ids = {s.rollout_id for s in data.samples if s.is_negative}
    ctx = LabelContext(data.problems, [r for r in data.rollouts if r.rollout_id in neg_ids], data.verdicts, model,
                       tokenizer, cfg, seed, out_dir)
    mined = mine_correct_steps(data.samples, annotate(ctx), cfg.annotator)
    stats = mining_stats(mined, data.problems, tokenizer, max_length) if _embedded(data.problems) else {}
    return mined, stats


def _embedded(problems: Sequence[Problem]) -> bool:
    """Do these problems have an exact step checker (embedded tasks), so mining precision can be measured?"""
    from negrl.tasks import DOMAIN_TO_TASK

    return bool(problems) and all(p.domain in DOMAIN_TO_TASK for p in problems)


def lora_config(cfg: BCPGRunConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")


def save_merged(model: Any, tokenizer: Any, out_dir: Path) -> Any:
    """Merge a LoRA adapter into its base (if any), save a plain policy directory, return the merged model."""
    from negrl.modeling import save_policy

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    save_policy(model, tokenizer, out_dir)
    return model


def run_args(args: Any, output_dir: Path, seed: int) -> Any:
    """A copy of training arguments with this run's output directory and seed."""
    import copy

    out = copy.copy(args)
    out.output_dir, out.seed = str(output_dir), seed
    return out


def evaluate(model: Any, tokenizer: Any, held_out: Sequence[Problem], cfg: BCPGRunConfig, seed: int) -> dict:
    """Held-out greedy and sampled accuracy (``negrl.evaluation``)."""
    from negrl.evaluation import evaluate_policy

    if not held_out:
        return {}
    ev = evaluate_policy(held_out, model, tokenizer, max_new_tokens=cfg.max_new_tokens, samples=cfg.eval_samples,
                         seed=seed, batch_size=cfg.gen_batch_size)
    return ev.as_dict()


def write_config(out_dir: Path, **sections: Any) -> None:
    """The resolved config of a run, next to its outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = {k: (v.to_dict() if hasattr(v, "to_dict") else dataclasses.asdict(v)) for k, v in sections.items()}
    text = yaml.safe_dump(json.loads(json.dumps(resolved, default=str)), sort_keys=False)
    (out_dir / "config.yaml").write_text(text, encoding="utf-8")


def run_round(cfg: BCPGRunConfig, args: Any, policy: str, out_dir: Path, seed: int, round_index: int = 0) -> dict:
    """One round from ``policy``: data, mining, BCPG-NSA training (LoRA), merged policy, held-out metrics."""
    from negrl.modeling import load_policy
    from negrl.trainers.bcpg_nsa import train_bcpg_nsa

    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(out_dir, bcpg=cfg, training=args)
    model, tokenizer = load_policy(policy)
    data = prepare_data(cfg, model, tokenizer, seed, out_dir, round_index, args.max_length)
    mined, stats = mine(data, cfg, model, tokenizer, seed, out_dir, args.max_length)
    dataset = bcpg_dataset(mined, tokenizer, cfg.beta, args.max_length)
    trainer = train_bcpg_nsa(model, tokenizer, dataset, run_args(args, out_dir / "trainer", seed),
                             peft_config=lora_config(cfg))
    model = save_merged(trainer.model, tokenizer, out_dir / "policy")
    metrics = {"round": round_index, "policy": str(out_dir / "policy"), "samples": len(data.samples),
               "negatives": sum(s.is_negative for s in data.samples), "rows": len(dataset),
               "mining": stats, "held_out": evaluate(model, tokenizer, data.held_out, cfg, seed)}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def run_rounds(cfg: BCPGRunConfig, args: Any, out_dir: Path, seed: int = 0) -> list[dict]:
    """``cfg.rounds`` rounds of generate → label → train, each from the previous round's merged policy."""
    policy, history = cfg.policy, []
    for r in range(cfg.rounds):
        metrics = run_round(cfg, args, policy, out_dir / f"round-{r:02d}", seed + r, round_index=r)
        history.append(metrics)
        policy = metrics["policy"]
    (out_dir / "rounds.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    return history


# --------------------------------------------------------------------------------------------------- pipeline methods

_BCPG_KEYS = ("beta", "annotator", "consensus_sources", "consensus_rule", "prm_model", "prm_threshold",
              "judge_model", "mc_k", "segment_rule")


def pipeline_samples(ctx: Any, model: Any, tokenizer: Any, max_length: int) -> list[BCPGSample]:
    """BCPG samples of the pipeline's shared data, with behaviour log-probs of the base (cached per seed)."""
    d, cfg = ctx.data, ctx.config
    data_cfg = BCPGDataConfig(max_length=max_length, use_chat_template=cfg.use_chat_template)
    return build_bcpg_samples(d.problems, d.rollouts, d.verdicts, model, tokenizer, data_cfg,
                              out_dir=cfg.run_dir / "bcpg" / "samples")


def pipeline_labels(ctx: Any, run_cfg: BCPGRunConfig, samples: Sequence[BCPGSample], model: Any,
                    tokenizer: Any) -> list[StepLabels]:
    """Step labels of the negatives by ``annotate``; the ``mc`` source is the pipeline's own Monte-Carlo labels."""
    neg = {s.rollout_id for s in samples if s.is_negative}
    lc = LabelContext(ctx.data.problems, [r for r in ctx.data.rollouts if r.rollout_id in neg], ctx.data.verdicts,
                      model, tokenizer, run_cfg, ctx.seed, ctx.config.run_dir / "bcpg",
                      precomputed={"mc": ctx.data.step_labels})
    return annotate(lc)


def train_pipeline_bcpg(ctx: Any, default_beta: float = 0.5) -> str:
    """``negrl.pipeline`` method: BCPG-NSA (or BCPG with β = 1) on the pipeline's shared data, LoRA on the base.

    Options (YAML ``method_options``): ``beta``, ``annotator`` (default ``mc``: the pipeline's labels),
    ``consensus_sources`` / ``consensus_rule`` / ``prm_model`` / ``judge_model`` (see ``BCPGRunConfig``), ``lora``,
    and any ``BCPGNSAConfig`` field (``tau``, ``normalization``, ``learning_rate``, ...).
    """
    from negrl.pipeline import _finish, _load_base, lora_config, trainer_kwargs
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer

    own = {k: ctx.options[k] for k in _BCPG_KEYS if k in ctx.options}
    run_cfg = BCPGRunConfig(**{"annotator": "mc", "beta": default_beta, **own})
    train_ctx = dataclasses.replace(ctx, options={k: v for k, v in ctx.options.items() if k not in _BCPG_KEYS})
    # lr 1e-3 collapses the tiny policy (the negative-advantage term is unbounded; runs/bcpg/experiment): 1e-4.
    args = BCPGNSAConfig(**trainer_kwargs(train_ctx, {"learning_rate": 1e-4, "max_length": 512}))
    model, tokenizer = _load_base(ctx)
    samples = pipeline_samples(ctx, model, tokenizer, args.max_length)
    mined = mine_correct_steps(samples, pipeline_labels(ctx, run_cfg, samples, model, tokenizer), run_cfg.annotator)
    dataset = bcpg_dataset(mined, tokenizer, run_cfg.beta, args.max_length)
    if len(dataset) == 0:
        raise ValueError("BCPG-NSA: no problem has both correct and wrong samples (nothing to train on)")
    stats = mining_stats(mined, ctx.data.problems, tokenizer, args.max_length) if _embedded(ctx.data.problems) else {}
    model.train()
    trainer = BCPGNSATrainer(model, args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora_config(train_ctx.options))
    trainer.train()
    out = _finish(ctx, trainer, tokenizer, dataset, None)
    info = {"beta": run_cfg.beta, "annotator": run_cfg.annotator, "samples": len(samples),
            "negatives": sum(s.is_negative for s in samples), "mining": stats}
    (Path(out) / "bcpg.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return out


def train_pipeline_bcpg_plain(ctx: Any) -> str:
    """Plain BCPG (β = 1: every token of a negative penalised alike)."""
    return train_pipeline_bcpg(dataclasses.replace(ctx, options={**ctx.options, "beta": 1.0}), default_beta=1.0)


# --------------------------------------------------------------------------------------------------- experiment


def run_variants(pipeline_cfg: Any, variants: dict[str, dict[str, Any]], seeds: Sequence[int]) -> dict[int, dict]:
    """Train and evaluate named variants of pipeline methods on the same data per seed.

    ``variants``: name → ``{"method": <negrl.pipeline.METHODS key>, **options}`` (e.g. ``{"method": "bcpg_nsa",
    "beta": -0.5, "annotator": "oracle"}``). Each variant's model is ``run_dir/models/<name>``, its evaluation
    ``run_dir/eval/<name>.json`` (both reused on a rerun). Returns ``{seed: {"data": ..., "results": ...}}`` in the
    shape ``negrl.pipeline.results_table`` reads.
    """
    from negrl.pipeline import (
        METHODS,
        MethodContext,
        data_summary,
        evaluate_method,
        prepare_data,
        write_resolved_config,
    )

    runs: dict[int, dict] = {}
    for seed in seeds:
        cfg = dataclasses.replace(pipeline_cfg, seed=seed)
        write_resolved_config(cfg)
        (cfg.run_dir / "variants.yaml").write_text(yaml.safe_dump(variants, sort_keys=False), encoding="utf-8")
        data = prepare_data(cfg)
        results = {}
        for name, spec in variants.items():
            spec = dict(spec)
            method = spec.pop("method", name)
            if method not in METHODS:
                raise ValueError(f"variant {name!r}: unknown method {method!r}; registered: {sorted(METHODS)}")
            out = cfg.run_dir / "models" / name
            if method == "base":
                model_dir = cfg.base_policy
            elif (out / "done.json").exists():
                model_dir = str(out)
            else:
                model_dir = METHODS[method](MethodContext(cfg, data, spec, out, seed))
            results[name] = evaluate_method(cfg, name, model_dir, data.test_problems)
            bcpg_info = Path(model_dir) / "bcpg.json"
            if bcpg_info.exists():
                results[name]["bcpg"] = json.loads(bcpg_info.read_text(encoding="utf-8"))
        runs[seed] = {"data": data_summary(data), "results": results}
    return runs


def mining_table(runs: dict[int, dict]) -> str:
    """Markdown table: per variant, mined negative-sample tokens and their precision vs the exact checker."""
    lines = ["| variant | annotator | β | negative tokens | mined tokens (mean) | precision | recall |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    names: list[str] = []
    for run in runs.values():
        names += [n for n, r in run["results"].items() if "bcpg" in r and n not in names]
    for n in names:
        infos = [run["results"][n]["bcpg"] for run in runs.values() if n in run["results"]]
        m = [i["mining"] for i in infos if i.get("mining")]
        if not m:
            continue

        def avg(key: str, rows: list[dict] = m) -> float:
            vals = [r[key] for r in rows if r[key] == r[key]]  # drop NaN
            return sum(vals) / len(vals) if vals else float("nan")

        lines.append(f"| {n} | {infos[0]['annotator']} | {infos[0]['beta']} | {avg('negative_tokens'):.0f} | "
                     f"{avg('mined_tokens'):.0f} | {avg('precision'):.3f} | {avg('recall'):.3f} |")
    return "\n".join(lines)


@dataclass
class TaskPRMConfig:
    """A PRM for an experiment, trained on Monte-Carlo labels of the base policy's rollouts of *other* prompts."""

    output_dir: str = "runs/bcpg/prm"
    seed: int = 100
    n_prompts: int = 128
    samples_per_prompt: int = 4
    steps: int = 200
    learning_rate: float = 5e-3
    lora_r: int = 16
    threshold: float = 0.5


def train_task_prm(pipeline_cfg: Any, prm: TaskPRMConfig) -> str:
    """Train (or reuse) the PRM: the pipeline's data stages on a separate seed, MC labels of every rollout, LoRA PRM.

    Reuses ``negrl.pipeline.prepare_data`` (prompts disjoint from the test set) and ``negrl.steps.prm``; the PRM's
    prompts differ from each experiment seed's prompts because they are drawn with seed ``prm.seed``.
    """
    from peft import LoraConfig

    from negrl.modeling import load_policy
    from negrl.pipeline import prepare_data
    from negrl.steps.prm import PRMConfig, PRMScorer, prm_rows, train_prm

    out = Path(prm.output_dir)
    if (out / "prm.json").exists():
        return str(out)
    mc = {**pipeline_cfg.mc, "only_incorrect": False}
    cfg = dataclasses.replace(pipeline_cfg, seed=prm.seed, n_prompts=prm.n_prompts, mc=mc,
                              samples_per_prompt=prm.samples_per_prompt, output_dir=str(out / "data"))
    model, tokenizer = load_policy(cfg.base_policy)
    data = prepare_data(cfg, model, tokenizer)
    args = PRMConfig(output_dir=str(out / "trainer"), learning_rate=prm.learning_rate, per_device_train_batch_size=32,
                     max_steps=prm.steps, lr_scheduler_type="cosine", warmup_steps=10, logging_steps=50,
                     disable_tqdm=True, seed=prm.seed, threshold=prm.threshold)
    lora = LoraConfig(r=prm.lora_r, lora_alpha=2 * prm.lora_r, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = train_prm(model, tokenizer, prm_rows(data.problems, data.step_labels), args, peft_config=lora)
    PRMScorer.from_trainer(trainer).save_pretrained(out)
    return str(out)
