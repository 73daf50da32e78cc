"""The shared experiment pipeline: base policy → post-training data → one model per method → held-out accuracy.

    prompts (disjoint from the held-out test set) ─ sample S per prompt (T=1) ─▶ rollouts ─ verify ─▶ verdicts
      ─ Monte-Carlo step labels (negrl.steps.monte_carlo) ─▶ per-method dataset ─ train (LoRA on the base)
      ─▶ model dir ─ greedy + sampled accuracy on the test set

Every stage is cached on disk under ``output_dir/seed{seed}/`` and reused on a rerun (``negrl.io`` stages: shards +
manifest written last, so an interrupted stage resumes; trained models carry a ``done.json``; evaluations a JSON):

    problems/ rollouts/ verdicts/ step_labels/    the post-training data (shared by all methods: equal problems)
    data/<method>.jsonl                           the dataset each method trained on (inspection)
    models/<method>/                              trained policy (LoRA merged) + done.json
    eval/<method>.json                            held-out accuracy
    config.yaml                                   the resolved configuration

Methods are plain functions in ``METHODS`` (name → ``fn(MethodContext) -> model dir``); other helpers register
theirs with one line (``METHODS["bcpg_nsa"] = train_bcpg_nsa``). Post-training sees only prompts and the verifier;
only ``sft_more`` (the "more gold data" baseline) reads gold solutions, of the *same* prompts.

The test set is the base policy's held-out split when its directory holds one (``problems/test``, written by
``recipes/sft.py``), so evaluation never touches the base's gold training problems; post-training prompts exclude
both the base's train and test problems.

Several processes (``torchrun --nproc_per_node 2``, ``accelerate launch`` on GPUs): sampling runs on the main
process first (the others then read its finished stage), Monte-Carlo labelling splits its work units across the
processes, training is data-parallel (TRL / transformers), and saving and evaluation run on the main process.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset

from negrl.builders import AWRRowConfig, BuildStats, PairConfig, awr_rows, outcome_dpo_pairs, rft_rows, step_dpo_pairs
from negrl.evaluation import evaluate_policy
from negrl.generation import GenerationConfig, format_prompt, generate_rollouts
from negrl.io import StageError, StageWriter, cached_stage, is_complete, read_stage
from negrl.processes import process_state
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.tasks import get_task
from negrl.verifiers import verify_rollouts


@dataclass
class PipelineConfig:
    """One experiment on an embedded task (or any task with problems + verifier) from one base policy.

    Attributes:
        base_policy: Model directory of the base (SFT) policy, e.g. ``runs/base/arithmetic`` from ``recipes/sft.py``.
        output_dir: Root of the cached stages and results.
        task / task_kwargs: Task used when the base directory has no problem splits.
        n_prompts: Post-training prompts (the same for every method: equal numbers of problems).
        n_test: Held-out problems for evaluation.
        seed: Seed of the post-training prompt set, sampling, labelling and training.
        samples_per_prompt: Rollouts per prompt (T = ``temperature``).
        mc: ``MonteCarloConfig`` overrides (``k``, ``estimator``, ``early_stop``, ...).
        methods: Methods to run (keys of ``METHODS``).
        method_options: Per-method options: ``lora`` (LoraConfig kwargs, or ``false`` for full fine-tuning),
            ``pairs`` (``PairConfig``), ``rows`` (``AWRRowConfig``); every other key goes to the trainer config.
        eval_samples: Sampled draws per test problem (sampled accuracy); greedy is always measured.
    """

    base_policy: str = "runs/base/arithmetic"
    output_dir: str = "runs/compare/arithmetic"
    task: str = "arithmetic"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    n_prompts: int = 2000
    n_test: int = 512
    seed: int = 0
    samples_per_prompt: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 256
    use_chat_template: bool = False
    mc: dict[str, Any] = field(default_factory=lambda: {"k": 8, "early_stop": True})
    methods: list[str] = field(default_factory=lambda: ["base", "rft", "step_dpo"])
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_samples: int = 2
    eval_seed: int = 0
    threads: int = 0
    show_progress: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> PipelineConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{where}: unknown pipeline field(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / f"seed{self.seed}"


@dataclass
class PipelineData:
    """Everything the methods train on (the same for every method of one seed)."""

    problems: list[Problem]
    rollouts: list[Rollout]
    verdicts: list[Verdict]
    step_labels: list[StepLabels]
    test_problems: list[Problem]
    tokenizer: Any = None

    def prompt_fn(self, use_chat_template: bool) -> Callable[[Problem], str]:
        return lambda p: format_prompt(p.prompt, self.tokenizer, use_chat_template)


@dataclass
class MethodContext:
    """What a method function gets: the config, the data, its options, where to write, and the seed."""

    config: PipelineConfig
    data: PipelineData
    options: dict[str, Any]
    output_dir: Path
    seed: int


MethodFn = Callable[[MethodContext], str]


# ---------------------------------------------------------------------------------------------------------------
# Data stages
# ---------------------------------------------------------------------------------------------------------------


def benchmark_splits(cfg: PipelineConfig) -> tuple[list[Problem], list[Problem]]:
    """A real benchmark (``negrl.benchmarks``): prompts = a seeded sample of its train split, test = its test split."""
    import random

    from negrl.benchmarks import load_benchmark

    train = load_benchmark(cfg.task, split="train", **cfg.task_kwargs)
    if len(train) < cfg.n_prompts:
        raise ValueError(f"{cfg.task}: train split has {len(train)} problems, n_prompts={cfg.n_prompts}")
    prompts = random.Random(f"prompts/{cfg.seed}").sample(train, cfg.n_prompts)
    return prompts, load_benchmark(cfg.task, split="test", limit=cfg.n_test, **cfg.task_kwargs)


def split_problems(cfg: PipelineConfig) -> tuple[list[Problem], list[Problem]]:
    """(post-training prompts, test problems): test = the base's held-out split when present; prompts exclude all."""
    from negrl.benchmarks import BENCHMARKS

    if cfg.task in BENCHMARKS:
        return benchmark_splits(cfg)
    base = Path(cfg.base_policy)
    task = get_task(cfg.task, **cfg.task_kwargs)
    exclude: set[str] = set()
    if is_complete(base / "problems" / "test"):
        test = read_stage(base / "problems" / "test", Problem)[: cfg.n_test]
        exclude |= {p.problem_id for p in read_stage(base / "problems" / "test", Problem)}
        if is_complete(base / "problems" / "train"):
            exclude |= {p.problem_id for p in read_stage(base / "problems" / "train", Problem)}
    else:
        _, test = task.make_splits(0, cfg.n_test, seed=0)
        exclude |= {p.problem_id for p in test}
    if len(test) < cfg.n_test:
        raise ValueError(f"{base}/problems/test holds {len(test)} problems but n_test={cfg.n_test}")
    prompts = task.generate_problems(cfg.n_prompts, seed=1000 + cfg.seed, exclude=exclude)
    return prompts, test


def sample_rollouts(cfg: PipelineConfig, problems: list[Problem], model: Any, tokenizer: Any) -> list[Rollout]:
    """S rollouts per problem, resumable in units of 256 problems (each unit seeded by its index)."""
    gen = GenerationConfig(num_samples=cfg.samples_per_prompt, temperature=cfg.temperature, top_p=1.0,
                           max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                           use_chat_template=cfg.use_chat_template, show_progress=False)
    writer = StageWriter(cfg.run_dir / "rollouts", Rollout,
                         config={**dataclasses.asdict(gen), "seed": cfg.seed, "policy": cfg.base_policy})
    if writer.complete:
        return writer.records()
    done = writer.done_keys
    unit = 256
    for u in range(0, len(problems), unit):
        chunk = problems[u : u + unit]
        if f"{chunk[-1].problem_id}#{cfg.samples_per_prompt - 1}" in done:
            continue
        gen_u = dataclasses.replace(gen, seed=cfg.seed * 100_003 + u // unit)
        writer.write(generate_rollouts(chunk, model, tokenizer, gen_u, model_name=cfg.base_policy))
        writer.flush()
    writer.finalize()
    return writer.records()


def prepare_data(cfg: PipelineConfig, model: Any = None, tokenizer: Any = None) -> PipelineData:
    """Run (or reuse) the data stages of one seed; every process gets the full data."""
    from negrl.modeling import load_policy
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo

    if model is None:
        model, tokenizer = load_policy(cfg.base_policy)
    prompts, test = split_problems(cfg)
    state = process_state()
    with state.main_process_first():
        problems = cached_stage(cfg.run_dir / "problems", Problem, lambda: prompts,
                                {"seed": cfg.seed, "n_prompts": cfg.n_prompts, "task": cfg.task})
        rollouts = sample_rollouts(cfg, problems, model, tokenizer)
        verdicts = cached_stage(cfg.run_dir / "verdicts", Verdict, lambda: verify_rollouts(problems, rollouts),
                                {"seed": cfg.seed, "rollouts": len(rollouts)})
    mc = MonteCarloConfig(**{"seed": cfg.seed, "use_chat_template": cfg.use_chat_template,
                             "max_new_tokens": cfg.max_new_tokens, "show_progress": cfg.show_progress, **cfg.mc})
    labels = label_monte_carlo(problems, rollouts, verdicts, model, tokenizer, mc, out_dir=cfg.run_dir / "step_labels")
    return PipelineData(problems, rollouts, verdicts, labels, test, tokenizer)


def data_summary(data: PipelineData) -> dict[str, Any]:
    """Sample accuracy, prompts with mixed outcomes, and the critical-step histogram (for the results table)."""
    ok = {v.rollout_id: v.correct for v in data.verdicts}
    by_problem: dict[str, list[bool | None]] = {}
    for r in data.rollouts:
        by_problem.setdefault(r.problem_id, []).append(ok[r.rollout_id])
    hist: dict[str, int] = {}
    for sl in data.step_labels:
        key = "none" if sl.first_error is None else str(sl.first_error)
        hist[key] = hist.get(key, 0) + 1
    known = [c for c in ok.values() if c is not None]
    return {
        "prompts": len(data.problems),
        "rollouts": len(data.rollouts),
        "sample_accuracy": sum(known) / max(1, len(known)),
        "prompts_mixed": sum(1 for v in by_problem.values() if True in v and False in v),
        "prompts_all_wrong": sum(1 for v in by_problem.values() if True not in v),
        "critical_step_histogram": dict(sorted(hist.items())),
    }


# ---------------------------------------------------------------------------------------------------------------
# Methods: each trains one policy from the base on the shared data and returns its model directory
# ---------------------------------------------------------------------------------------------------------------

DEFAULT_LORA: dict[str, Any] = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear",
                                "task_type": "CAUSAL_LM"}
_BUILDER_KEYS = ("lora", "pairs", "rows")


def lora_config(options: dict[str, Any]) -> Any | None:
    """``peft.LoraConfig`` from ``options["lora"]`` (merged over ``DEFAULT_LORA``); ``lora: false`` → full FT."""
    spec = options.get("lora", {})
    if spec is False or spec is None:
        return None
    from peft import LoraConfig

    return LoraConfig(**{**DEFAULT_LORA, **dict(spec)})


def trainer_kwargs(ctx: MethodContext, defaults: dict[str, Any]) -> dict[str, Any]:
    """Trainer-config kwargs: pipeline defaults < method defaults < the method's options from the YAML."""
    own = {k: v for k, v in ctx.options.items() if k not in _BUILDER_KEYS}
    base = {"output_dir": str(ctx.output_dir / "trainer"), "seed": ctx.seed, "logging_steps": 50,
            "disable_tqdm": not ctx.config.show_progress, "lr_scheduler_type": "cosine", "warmup_steps": 10,
            "per_device_train_batch_size": 32, "num_train_epochs": 2}
    return {**base, **defaults, **own}


def _load_base(ctx: MethodContext) -> tuple[Any, Any]:
    from negrl.modeling import load_policy

    model, tokenizer = load_policy(ctx.config.base_policy)
    model.train()
    return model, tokenizer


def _finish(ctx: MethodContext, trainer: Any, tokenizer: Any, dataset: Dataset, stats: BuildStats | None) -> str:
    """Merge the LoRA adapter, save the policy and ``done.json`` (main process), and sync the processes."""
    from negrl.modeling import save_policy

    acc = trainer.accelerator
    if acc.is_main_process:
        model = acc.unwrap_model(trainer.model)
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        save_policy(model, tokenizer, ctx.output_dir)
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        done = {"rows": len(dataset), "steps": trainer.state.global_step, "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "build": stats.as_dict() if stats else None,
                "options": _jsonable(ctx.options)}
        (ctx.output_dir / "done.json").write_text(json.dumps(done, indent=2), encoding="utf-8")
    acc.wait_for_everyone()
    return str(ctx.output_dir)


def _dump(ctx: MethodContext, name: str, dataset: Dataset) -> None:
    if process_state().is_main_process:
        path = ctx.config.run_dir / "data" / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.to_json(str(path), lines=True)


def _train_sft_rows(ctx: MethodContext, name: str, dataset: Dataset) -> str:
    from negrl.sft import cpu_safe_sft_config, train_sft

    _dump(ctx, name, dataset)
    if len(dataset) == 0:
        raise ValueError(f"{name}: the builder produced no rows (no correct samples?)")
    model, tokenizer = _load_base(ctx)
    args = cpu_safe_sft_config(**trainer_kwargs(ctx, {"learning_rate": 1e-3}))
    rows = dataset.select_columns(["prompt", "completion"])
    trainer = train_sft(model, tokenizer, rows, args, peft_config=lora_config(ctx.options))
    return _finish(ctx, trainer, tokenizer, dataset, None)


def train_base(ctx: MethodContext) -> str:
    """The base policy itself (no training): the reference row of the table."""
    return ctx.config.base_policy


def train_sft_more(ctx: MethodContext) -> str:
    """SFT on the *gold* solutions of the post-training prompts ("more gold data" baseline; reads gold)."""
    from negrl.sft import gold_dataset

    return _train_sft_rows(ctx, "sft_more", gold_dataset(ctx.data.problems))


def train_rft(ctx: MethodContext) -> str:
    """Rejection fine-tuning: SFT on the unique verified-correct self-samples."""
    d = ctx.data
    rows = rft_rows(d.problems, d.rollouts, d.verdicts, prompt_fn=d.prompt_fn(ctx.config.use_chat_template))
    return _train_sft_rows(ctx, "rft", rows)


def _train_pairs(ctx: MethodContext, name: str, dataset: Dataset, stats: BuildStats) -> str:
    from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer

    _dump(ctx, name, dataset)
    if len(dataset) == 0:
        raise ValueError(f"{name}: the builder produced no pairs ({stats.as_dict()})")
    model, tokenizer = _load_base(ctx)
    args = StepDPOConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-4, "beta": 0.3, "rpo_alpha": 1.0,
                                                "max_length": 512}))
    trainer = StepDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora_config(ctx.options))
    trainer.train()
    return _finish(ctx, trainer, tokenizer, dataset, stats)


def _pairs(ctx: MethodContext, fmt: str | None) -> tuple[Dataset, BuildStats]:
    d, stats = ctx.data, BuildStats()
    spec = {"seed": ctx.seed, **ctx.options.get("pairs", {})}
    prompt_fn = d.prompt_fn(ctx.config.use_chat_template)
    if fmt is None:
        return outcome_dpo_pairs(d.problems, d.rollouts, d.verdicts, PairConfig(**spec), prompt_fn, stats), stats
    cfg = PairConfig(**{**spec, "format": fmt})
    return step_dpo_pairs(d.problems, d.rollouts, d.verdicts, d.step_labels, cfg, prompt_fn, stats=stats), stats


def train_outcome_dpo(ctx: MethodContext) -> str:
    """Outcome-level DPO baseline: random correct vs whole wrong self-samples."""
    return _train_pairs(ctx, "outcome_dpo", *_pairs(ctx, None))


def train_step_dpo(ctx: MethodContext) -> str:
    """Per-step DPO, paper format: negatives truncated after their critical step (no EOS)."""
    return _train_pairs(ctx, "step_dpo", *_pairs(ctx, "paper"))


def train_step_dpo_prefix(ctx: MethodContext) -> str:
    """Per-step DPO, shared-prefix format (Theorem 6.1 / Self-Explore)."""
    return _train_pairs(ctx, "step_dpo_prefix", *_pairs(ctx, "shared_prefix"))


def train_awr(ctx: MethodContext) -> str:
    """Advantage-weighted RL on positive and (critical-step-truncated) negative rollouts."""
    from negrl.trainers.awr import AWRConfig, AWRTrainer

    d, stats = ctx.data, BuildStats()
    rows = awr_rows(d.problems, d.rollouts, d.verdicts, d.step_labels, AWRRowConfig(**ctx.options.get("rows", {})),
                    d.prompt_fn(ctx.config.use_chat_template), stats)
    _dump(ctx, "awr", rows)
    model, tokenizer = _load_base(ctx)
    tokenizer.padding_side = "right"
    args = AWRConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-3, "beta": 0.5, "max_length": 512}))
    trainer = AWRTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                         peft_config=lora_config(ctx.options))
    trainer.train()
    return _finish(ctx, trainer, tokenizer, rows, stats)


def _bcpg() -> Any:
    import negrl.bcpg  # lazy: negrl.bcpg imports this module's helpers

    return negrl.bcpg


# name → method. Other helpers register theirs with a one-line additive edit.
METHODS: dict[str, MethodFn] = {
    "base": train_base,
    "sft_more": train_sft_more,
    "rft": train_rft,
    "outcome_dpo": train_outcome_dpo,
    "step_dpo": train_step_dpo,
    "step_dpo_prefix": train_step_dpo_prefix,
    "awr": train_awr,
    "bcpg": lambda ctx: _bcpg().train_pipeline_bcpg_plain(ctx),  # BCPG-NSA helper (negrl/bcpg.py)
    "bcpg_nsa": lambda ctx: _bcpg().train_pipeline_bcpg(ctx),
}


# ---------------------------------------------------------------------------------------------------------------
# Running methods and evaluating them
# ---------------------------------------------------------------------------------------------------------------


def write_resolved_config(cfg: PipelineConfig) -> None:
    if process_state().is_main_process:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(cfg), default=str)), sort_keys=False)
        (cfg.run_dir / "config.yaml").write_text(text, encoding="utf-8")


def run_method(cfg: PipelineConfig, name: str, data: PipelineData) -> str:
    """Train method ``name`` (or reuse its finished model directory) and return the model directory."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {sorted(METHODS)}")
    out = cfg.run_dir / "models" / name
    if name == "base":
        return cfg.base_policy
    options = dict(cfg.method_options.get(name, {}))
    done = out / "done.json"
    if done.exists():
        # A finished model is reused only for the options it was trained with (like the data stages' config check).
        stored = json.loads(done.read_text(encoding="utf-8")).get("options")
        if stored is not None and stored != _jsonable(options):
            raise StageError(f"{out} was trained with method options {stored}, not {_jsonable(options)}: "
                             "delete it or use another output_dir")
        return str(out)
    ctx = MethodContext(config=cfg, data=data, options=options, output_dir=out, seed=cfg.seed)
    return METHODS[name](ctx)


def _jsonable(options: dict[str, Any]) -> Any:
    return json.loads(json.dumps(options, sort_keys=True, default=str))


def evaluate_method(cfg: PipelineConfig, name: str, model_dir: str, test: list[Problem]) -> dict[str, Any]:
    """Greedy and sampled held-out accuracy of ``model_dir`` (cached in ``eval/<name>.json``; main process)."""
    from negrl.modeling import load_policy

    path = cfg.run_dir / "eval" / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    model, tokenizer = load_policy(model_dir)
    ev = evaluate_policy(test, model, tokenizer, max_new_tokens=cfg.max_new_tokens, samples=cfg.eval_samples,
                         seed=cfg.eval_seed, batch_size=cfg.batch_size)
    result = {"method": name, "seed": cfg.seed, **ev.as_dict(), "model_dir": model_dir}
    done = Path(model_dir) / "done.json"
    if done.exists():
        result["train"] = json.loads(done.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Data stages, then every method of ``cfg.methods``; returns ``{"data": summary, "results": {method: eval}}``."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown:  # fail before any sampling or training, not after
        raise ValueError(f"unknown method(s) {unknown} in `methods`; registered: {sorted(METHODS)}")
    write_resolved_config(cfg)
    data = prepare_data(cfg)
    results: dict[str, Any] = {}
    for name in cfg.methods:
        model_dir = run_method(cfg, name, data)
        if process_state().is_main_process:
            results[name] = evaluate_method(cfg, name, model_dir, data.test_problems)
    process_state().wait_for_everyone()
    return {"data": data_summary(data), "results": results}


# ---------------------------------------------------------------------------------------------------------------
# Configs and multi-seed tables (used by recipes/compare_methods.py and recipes/train_step_rl.py)
# ---------------------------------------------------------------------------------------------------------------


def load_pipeline_config(path: str | os.PathLike | None, **overrides: Any) -> PipelineConfig:
    """``PipelineConfig`` from a YAML file (unknown keys are an error naming the file) plus non-None overrides."""
    d: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of pipeline fields, got {type(loaded).__name__}")
        d.update(loaded)
    d.update({k: v for k, v in overrides.items() if v is not None})
    return PipelineConfig.from_dict(d, where=str(path or "overrides"))


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd


def results_table(runs: dict[int, dict[str, Any]]) -> str:
    """Markdown table over seeds: mean ± sample std (and per-seed values) of greedy and sampled accuracy."""
    methods: list[str] = []
    for run in runs.values():
        methods += [m for m in run["results"] if m not in methods]
    lines = ["| method | seeds | greedy % (mean ± std) | sampled % (mean ± std) | per-seed greedy | rows |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m in methods:
        rs = [run["results"][m] for run in runs.values() if m in run["results"]]
        g, gs = _mean_std([100 * r["greedy"] for r in rs])
        s, ss = _mean_std([100 * r["sampled"] for r in rs])
        rows = [str(r.get("train", {}).get("rows", "-")) for r in rs]
        per_seed = ", ".join(f"{100 * r['greedy']:.1f}" for r in rs)
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(f"| {m} | {seeds} | {g:.1f} ± {gs:.1f} | {s:.1f} ± {ss:.1f} | {per_seed} | {'/'.join(rows)} |")
    return "\n".join(lines)


def run_seeds(cfg: PipelineConfig, seeds: list[int]) -> dict[int, dict[str, Any]]:
    """``run_pipeline`` for each seed (fresh post-training prompts, sampling and training seeds each)."""
    return {seed: run_pipeline(dataclasses.replace(cfg, seed=seed)) for seed in seeds}
