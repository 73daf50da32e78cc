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
from negrl.io import StageError, read_stage, write_stage
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.steps.segment import segment
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
    try:
        return read_stage(out_dir / "rollouts", Rollout), read_stage(out_dir / "verdicts", Verdict)
    except (StageError, FileNotFoundError):
        pass
    rollouts = generate_rollouts(problems, model, tokenizer, gen)
    verdicts = verify_rollouts(list(problems), rollouts)
    stage_cfg = {**dataclasses.asdict(gen), "n_problems": len(problems)}
    write_stage(out_dir / "rollouts", rollouts, Rollout, config=stage_cfg)
    write_stage(out_dir / "verdicts", verdicts, Verdict, config=stage_cfg)
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


def oracle_labels(problem: Problem, rollout: Rollout, rule: str = "lines") -> StepLabels:
    """Exact step labels of an embedded-task rollout: a step is correct iff every line it covers is correct."""
    from negrl.tasks import check_steps

    line_ok = check_steps(problem, rollout.completion)
    steps = segment(rollout.completion, rule=rule)
    labels: list[bool | None] = []
    for st in steps:
        first = rollout.completion.count("\n", 0, st.start)
        last = first + st.text.rstrip("\n").count("\n")
        labels.append(all(line_ok[first : last + 1]))
    first_error = next((i for i, ok in enumerate(labels) if not ok), None)
    return StepLabels(rollout_id=rollout.rollout_id, steps=steps, values=[None] * len(steps), labels=labels,
                      first_error=first_error, source="oracle")


def _label_oracle(ctx: LabelContext) -> list[StepLabels]:
    by_id = {p.problem_id: p for p in ctx.problems}
    return [oracle_labels(by_id[r.problem_id], r, ctx.cfg.segment_rule) for r in ctx.rollouts]


def _label_mc(ctx: LabelContext) -> list[StepLabels]:
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo

    mc = MonteCarloConfig(k=ctx.cfg.mc_k, max_new_tokens=ctx.cfg.max_new_tokens, seed=ctx.seed,
                          segment_rule=ctx.cfg.segment_rule, use_chat_template=ctx.cfg.use_chat_template,
                          batch_size=ctx.cfg.gen_batch_size, show_progress=False)
    return label_monte_carlo(ctx.problems, ctx.rollouts, ctx.verdicts, ctx.model, ctx.tokenizer, mc,
                             out_dir=ctx.out_dir / "mc")


def _label_prm(ctx: LabelContext) -> list[StepLabels]:
    from negrl.steps.prm import PRMScorer

    if not ctx.cfg.prm_model:
        raise ValueError("annotator 'prm' needs prm_model (a PRM trained with negrl.steps.prm)")
    scorer = PRMScorer.load(ctx.cfg.prm_model, threshold=ctx.cfg.prm_threshold)
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


def label_source(source: str, ctx: LabelContext) -> list[StepLabels]:
    """Labels of one source, cached as a stage ``out_dir/labels-{source}``."""
    stage = ctx.out_dir / f"labels-{source}"
    try:
        return read_stage(stage, StepLabels)
    except (StageError, FileNotFoundError):
        pass
    labels = SOURCES[source](ctx)
    write_stage(stage, labels, StepLabels, config={"source": source, "n": len(ctx.rollouts)})
    return labels


def annotate(ctx: LabelContext) -> list[StepLabels]:
    """Step labels of the negatives from ``cfg.annotator`` (a single source, or the consensus of several)."""
    name = ctx.cfg.annotator
    if name in SOURCES:
        return label_source(name, ctx)
    if name != "consensus":
        raise ValueError(f"unknown annotator {name!r}; expected one of {ANNOTATORS}")
    from negrl.steps.consensus import combine_labels

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
    stats: dict[str, float] = {}
    if not cfg.benchmark:
        stats = mining_stats(mined, data.problems, tokenizer, max_length)
    return mined, stats


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
