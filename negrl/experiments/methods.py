"""The method registry: every method of a comparison trains one policy from the base on the shared data.

A method is a function ``fn(MethodContext) -> model directory``, registered under its name with
``@register_method("name")``; ``METHODS`` is the registry (``negrl.experiments.compare`` runs its entries, YAML
``methods:`` lists them). BCPG-NSA registers here like every other method. Adding a method: write the builder
(``negrl.builders``) and trainer (``negrl.trainers``) in the library, then one function here, registered with its
data function (``data=``: what the builder makes of the shared data, ``MethodData``).

Scarce positives (every sample wrong, no pit, every advantage 0) leave a method nothing to train on: its data
function says why (``MethodData.skip``) and the method raises ``MethodSkipped`` before loading a model, so a
comparison records ``skipped: <reason>`` with the build counts and goes on. ``preflight`` runs every data function
before any training and says which methods the data can feed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from negrl.builders import AWRRowConfig, BuildStats, PairConfig, awr_rows, outcome_dpo_pairs, rft_rows, step_dpo_pairs
from negrl.builders.bcpg import (
    BCPGDataConfig,
    BCPGSample,
    bcpg_dataset,
    build_bcpg_samples,
    group_samples,
    mine_correct_steps,
    mining_stats,
)
from negrl.builders.groups import group_rollouts
from negrl.experiments.bcpg import BCPGRunConfig, embedded_problems, label_settings
from negrl.experiments.pipeline import MethodContext, MethodFn, PipelineConfig, PipelineData
from negrl.lora import lora_config as default_lora_config
from negrl.processes import process_state
from negrl.records import StepLabels
from negrl.steps.monte_carlo import mc_continuations
from negrl.steps.sources import label_steps
from negrl.trainers.resume import train_resuming


@dataclass
class MethodData:
    """What a method's builder made of the shared data.

    Attributes:
        rows: The rows the method trains on (``None`` where they need the model, as BCPG's behaviour log-probs do:
            ``stats`` then counts the samples they come from).
        stats: Rows kept and dropped, with the reasons.
        skip: Why the method has nothing to train on (``None``: it can train).
    """

    rows: Dataset | None
    stats: BuildStats = field(default_factory=BuildStats)
    skip: str | None = None

    def require(self, method: str) -> Dataset | None:
        """The rows, or ``MethodSkipped`` (before any model is loaded) when there is nothing to train on."""
        if self.skip is not None:
            raise MethodSkipped(method, self.skip, self.stats.as_dict())
        return self.rows


class MethodSkipped(Exception):
    """A method had nothing to train on: the comparison records ``skipped: <reason>`` and runs the next method."""

    def __init__(self, method: str, reason: str, build: dict[str, Any]) -> None:
        super().__init__(f"{method}: skipped: {reason} (build: {build})")
        self.method, self.reason, self.build = method, reason, build

    def result(self, name: str, seed: int) -> dict[str, Any]:
        """The result row of a skipped method (no model, no evaluation)."""
        return {"method": name, "seed": seed, "skipped": self.reason, "build": self.build}


DataFn = Callable[[MethodContext], MethodData]
METHODS: dict[str, MethodFn] = {}
METHOD_DATA: dict[str, DataFn] = {}  # data function of each method that trains (``base`` has none)
STEP_LABEL_METHODS: set[str] = set()  # methods that read the Monte-Carlo step labels (the others skip labelling)


def register_method(name: str, data: DataFn | None = None, step_labels: bool = False) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as method ``name`` with its data function (a name registered twice is an error).

    ``step_labels``: the method reads ``PipelineData.step_labels`` (a harness that runs only methods without it
    skips Monte-Carlo labelling, and charges its cost only to the methods that use it).
    """

    def add(fn: MethodFn) -> MethodFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered ({METHODS[name].__qualname__})")
        METHODS[name] = fn
        if data is not None:
            METHOD_DATA[name] = data
        if step_labels:
            STEP_LABEL_METHODS.add(name)
        return fn

    return add


# ---------------------------------------------------------------------------------------------------------------
# Methods: each trains one policy from the base on the shared data and returns its model directory
# ---------------------------------------------------------------------------------------------------------------

_BUILDER_KEYS = ("lora", "pairs", "rows")


def lora_config(options: dict[str, Any]) -> Any | None:
    """``peft.LoraConfig`` from ``options["lora"]`` (merged over ``DEFAULT_LORA``); ``lora: false`` → full FT."""
    spec = options.get("lora", {})
    if spec is False or spec is None:
        return None
    return default_lora_config(**dict(spec))


def trainer_kwargs(ctx: MethodContext, defaults: dict[str, Any]) -> dict[str, Any]:
    """Trainer-config kwargs: pipeline defaults < method defaults < the method's options from the YAML."""
    own = {k: v for k, v in ctx.options.items() if k not in _BUILDER_KEYS}
    base = {"output_dir": str(ctx.output_dir / "trainer"), "seed": ctx.seed, "logging_steps": 50,
            "disable_tqdm": not ctx.config.show_progress, "lr_scheduler_type": "cosine", "warmup_steps": 10,
            "per_device_train_batch_size": 32, "num_train_epochs": 2}
    return {**base, **defaults, **own}


def load_base(ctx: MethodContext) -> tuple[Any, Any]:
    from negrl.modeling import load_policy

    model, tokenizer = load_policy(ctx.config.base_policy)
    model.train()
    return model, tokenizer


def finish(ctx: MethodContext, trainer: Any, tokenizer: Any, dataset: Dataset, stats: BuildStats | None) -> str:
    """Save the LoRA adapter and the merged policy, then ``done.json`` (main process), and sync the processes."""
    from negrl.modeling import save_merged_policy

    acc = trainer.accelerator
    if acc.is_main_process:
        save_merged_policy(acc.unwrap_model(trainer.model), tokenizer, ctx.output_dir)
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        done = {"rows": len(dataset), "steps": trainer.state.global_step, "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "build": stats.as_dict() if stats else None,
                "options": jsonable(ctx.options)}
        (ctx.output_dir / "done.json").write_text(json.dumps(done, indent=2), encoding="utf-8")
    acc.wait_for_everyone()
    return str(ctx.output_dir)


def _dump(ctx: MethodContext, name: str, dataset: Dataset) -> None:
    """``run_dir/data/<model dir name>.jsonl``: the method's name, or a variant's / arm's (``models/<name>``)."""
    if process_state().is_main_process:
        path = ctx.config.run_dir / "data" / f"{ctx.output_dir.name or name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        from negrl.quiet import quiet_library

        with quiet_library():
            dataset.to_json(str(path), lines=True)


def _train_sft_rows(ctx: MethodContext, name: str, built: MethodData) -> str:
    from negrl.sft import cpu_safe_sft_config, train_sft

    dataset = built.require(name)
    assert dataset is not None
    _dump(ctx, name, dataset)
    model, tokenizer = load_base(ctx)
    args = cpu_safe_sft_config(**trainer_kwargs(ctx, {"learning_rate": 1e-3}))
    # the generated ids (RFT rows of sampled completions) are trained as generated, not re-encoded
    rows = dataset.select_columns([c for c in ("prompt", "completion", "completion_ids", "add_eos")
                                   if c in dataset.column_names])
    trainer = train_sft(model, tokenizer, rows, args, peft_config=lora_config(ctx.options))
    return finish(ctx, trainer, tokenizer, dataset, built.stats)


@register_method("base")
def train_base(ctx: MethodContext) -> str:
    """The base policy itself (no training): the reference row of the table."""
    return ctx.config.base_policy


def sft_more_data(ctx: MethodContext) -> MethodData:
    """Gold rows of the post-training prompts; skipped when no prompt has a gold solution (a partial set is an error)."""
    from negrl.sft import gold_dataset

    problems = ctx.data.problems
    if not any(p.solution for p in problems):
        stats = BuildStats()
        stats.dropped["no_gold_solution"] = len(problems)
        return MethodData(None, stats, f"none of the {len(problems)} prompts has a gold solution")
    rows = gold_dataset(problems)
    return MethodData(rows, BuildStats(kept=len(rows)))


@register_method("sft_more", data=sft_more_data)
def train_sft_more(ctx: MethodContext) -> str:
    """SFT on the *gold* solutions of the post-training prompts ("more gold data" baseline; reads gold)."""
    return _train_sft_rows(ctx, "sft_more", sft_more_data(ctx))


def rft_data(ctx: MethodContext) -> MethodData:
    """RFT rows; the drops are the wrong, unjudged and duplicate samples (``rft_rows`` keeps the rest)."""
    d = ctx.data
    rows = rft_rows(d.problems, d.rollouts, d.verdicts, prompt_fn=d.prompt_fn(ctx.config.use_chat_template),
                    tokenizer=d.tokenizer)
    groups = group_rollouts(d.problems, d.rollouts, d.verdicts)
    correct, wrong = sum(len(g.correct) for g in groups), sum(len(g.wrong) for g in groups)
    stats = BuildStats(kept=len(rows))
    for reason, n in (("wrong", wrong), ("unjudged", len(d.rollouts) - correct - wrong),
                      ("duplicate", correct - len(rows))):
        if n:
            stats.dropped[reason] = n
    skip = None if len(rows) else f"no verified-correct samples (0 of {len(d.rollouts)} rollouts)"
    return MethodData(rows, stats, skip)


@register_method("rft", data=rft_data)
def train_rft(ctx: MethodContext) -> str:
    """Rejection fine-tuning: SFT on the unique verified-correct self-samples."""
    return _train_sft_rows(ctx, "rft", rft_data(ctx))


def _train_pairs(ctx: MethodContext, name: str, built: MethodData) -> str:
    from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer

    dataset, stats = built.require(name), built.stats
    assert dataset is not None
    _dump(ctx, name, dataset)
    model, tokenizer = load_base(ctx)
    # rpo_alpha 0: plain DPO, as Setlur et al. and Self-Explore train; a config asks for the RPO / DPOP-style NLL
    # anchor on the chosen side with ``rpo_alpha: 1.0`` (the arithmetic configs and the demo do).
    args = StepDPOConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-4, "beta": 0.3, "rpo_alpha": 0.0,
                                                "max_length": 512}))
    trainer = StepDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora_config(ctx.options))
    train_resuming(trainer)
    return finish(ctx, trainer, tokenizer, dataset, stats)


def _pairs(ctx: MethodContext, fmt: str | None) -> MethodData:
    d, stats = ctx.data, BuildStats()
    spec = {"seed": ctx.seed, **ctx.options.get("pairs", {})}
    prompt_fn = d.prompt_fn(ctx.config.use_chat_template)
    if fmt is None:
        rows = outcome_dpo_pairs(d.problems, d.rollouts, d.verdicts, PairConfig(**spec), prompt_fn, stats,
                                 tokenizer=d.tokenizer)
    else:
        cfg = PairConfig(**{**spec, "format": fmt})
        # shared-prefix pairs also take the correct Monte-Carlo continuations found from the prefix before the pit
        conts = mc_continuations(d.step_labels, d.rollouts) if fmt == "shared_prefix" else None
        rows = step_dpo_pairs(d.problems, d.rollouts, d.verdicts, d.step_labels, cfg, prompt_fn, conts, stats,
                              tokenizer=d.tokenizer)
    return MethodData(rows, stats, None if len(rows) else f"no pairs (dropped: {dict(stats.dropped) or 'nothing to pair'})")


def outcome_dpo_data(ctx: MethodContext) -> MethodData:
    return _pairs(ctx, None)


def step_dpo_data(ctx: MethodContext) -> MethodData:
    return _pairs(ctx, "paper")


def step_dpo_prefix_data(ctx: MethodContext) -> MethodData:
    return _pairs(ctx, "shared_prefix")


@register_method("outcome_dpo", data=outcome_dpo_data)
def train_outcome_dpo(ctx: MethodContext) -> str:
    """Outcome-level DPO baseline: random correct vs whole wrong self-samples."""
    return _train_pairs(ctx, "outcome_dpo", outcome_dpo_data(ctx))


@register_method("step_dpo", data=step_dpo_data, step_labels=True)
def train_step_dpo(ctx: MethodContext) -> str:
    """Per-step DPO, paper format: negatives truncated after their critical step (no EOS)."""
    return _train_pairs(ctx, "step_dpo", step_dpo_data(ctx))


@register_method("step_dpo_prefix", data=step_dpo_prefix_data, step_labels=True)
def train_step_dpo_prefix(ctx: MethodContext) -> str:
    """Per-step DPO, shared-prefix format (Theorem 6.1 / Self-Explore)."""
    return _train_pairs(ctx, "step_dpo_prefix", step_dpo_prefix_data(ctx))


def awr_data(ctx: MethodContext) -> MethodData:
    """AWR rows; skipped when no row carries a non-zero step advantage (the loss would be plain SFT on them)."""
    d, stats = ctx.data, BuildStats()
    rows = awr_rows(d.problems, d.rollouts, d.verdicts, d.step_labels, AWRRowConfig(**ctx.options.get("rows", {})),
                    d.prompt_fn(ctx.config.use_chat_template), stats, tokenizer=d.tokenizer)
    if not len(rows):
        return MethodData(rows, stats, f"no rows (dropped: {dict(stats.dropped) or 'no judged samples'})")
    if not any(span[2] != 0.0 for spans in rows["spans"] for span in spans):
        return MethodData(rows, stats, f"no non-zero advantage in its {len(rows)} rows (training would be SFT on them)")
    return MethodData(rows, stats)


@register_method("awr", data=awr_data, step_labels=True)
def train_awr(ctx: MethodContext) -> str:
    """Advantage-weighted RL on positive and (critical-step-truncated) negative rollouts."""
    from negrl.trainers.awr import AWRConfig, AWRTrainer

    built = awr_data(ctx)
    rows, stats = built.require("awr"), built.stats
    assert rows is not None
    _dump(ctx, "awr", rows)
    model, tokenizer = load_base(ctx)
    tokenizer.padding_side = "right"
    args = AWRConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-3, "beta": 0.5, "max_length": 512}))
    trainer = AWRTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                         peft_config=lora_config(ctx.options))
    train_resuming(trainer)
    return finish(ctx, trainer, tokenizer, rows, stats)


def rft_neg_data(ctx: MethodContext) -> MethodData:
    """RFT rows plus the critical steps of the negatives of all-wrong prompts (``negrl.builders.negative``).

    Options: ``rows: {prompts: all_wrong | all}``. Skipped when there is neither a positive nor a pit.
    """
    from negrl.builders.negative import negative_rows

    d, stats = ctx.data, BuildStats()
    rows = negative_rows(d.problems, d.rollouts, d.verdicts, d.step_labels, d.prompt_fn(ctx.config.use_chat_template),
                         stats=stats, **ctx.options.get("rows", {}))
    return MethodData(rows, stats, None if len(rows) else f"no rows (dropped: {dict(stats.dropped) or 'no samples'})")


@register_method("rft_neg", data=rft_neg_data, step_labels=True)
def train_rft_neg(ctx: MethodContext) -> str:
    """RFT + a bounded push-down of the critical steps of all-wrong prompts (``negrl.trainers.bounded_negatives``)."""
    from negrl.trainers.bounded_negatives import BoundedNegativesConfig, BoundedNegativesTrainer

    built = rft_neg_data(ctx)
    rows = built.require("rft_neg")
    assert rows is not None
    _dump(ctx, "rft_neg", rows)
    model, tokenizer = load_base(ctx)
    tokenizer.padding_side = "right"
    args = BoundedNegativesConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-3, "max_length": 512}))
    trainer = BoundedNegativesTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                                      peft_config=lora_config(ctx.options))
    train_resuming(trainer)
    return finish(ctx, trainer, tokenizer, rows, built.stats)


def jsonable(options: dict[str, Any]) -> Any:
    """Options as they are stored in ``done.json`` (and compared on a rerun)."""
    return json.loads(json.dumps(options, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------------------------
# BCPG-NSA on the shared data (the annotators are negrl.steps.sources; rounds are negrl.experiments.bcpg)
# ---------------------------------------------------------------------------------------------------------------

_BCPG_KEYS = ("beta", "annotator", "consensus_sources", "consensus_rule", "prm_model", "prm_threshold", "prm_options",
              "judge_model", "mc_k", "segment_rule")


def pipeline_samples(ctx: MethodContext, model: Any, tokenizer: Any, max_length: int) -> list[BCPGSample]:
    """BCPG samples of the pipeline's shared data, with behaviour log-probs of the base (cached per seed)."""
    d, cfg = ctx.data, ctx.config
    data_cfg = BCPGDataConfig(max_length=max_length, use_chat_template=cfg.use_chat_template)
    return build_bcpg_samples(d.problems, d.rollouts, d.verdicts, model, tokenizer, data_cfg,
                              out_dir=cfg.run_dir / "bcpg" / "samples")


def pipeline_labels(ctx: MethodContext, run_cfg: BCPGRunConfig, samples: list[BCPGSample], model: Any,
                    tokenizer: Any) -> list[StepLabels]:
    """Step labels of the negatives from ``run_cfg.annotator``; the ``mc`` source is the pipeline's own labels."""
    neg = {s.rollout_id for s in samples if s.is_negative}
    negatives = [r for r in ctx.data.rollouts if r.rollout_id in neg]
    return label_steps(run_cfg.annotator, ctx.data.problems, negatives, ctx.data.verdicts,
                       label_settings(run_cfg, ctx.seed), model, tokenizer, cache_dir=ctx.config.run_dir / "bcpg",
                       precomputed={"mc": ctx.data.step_labels})


def bcpg_data(ctx: MethodContext) -> MethodData:
    """BCPG's samples are the verified samples of mixed problems (the group-mean baseline gives the others advantage
    0); counted without the model, so a run without one is skipped before the base is loaded."""
    d = ctx.data
    samples = group_samples(d.problems, d.rollouts, d.verdicts, use_chat_template=False)
    judged = sum(v.correct is not None for v in d.verdicts)
    stats = BuildStats(kept=len(samples))
    for reason, n in (("all_same_outcome", judged - len(samples)), ("unjudged", len(d.verdicts) - judged)):
        if n:
            stats.dropped[reason] = n
    return MethodData(None, stats, None if samples else "no problem has both a correct and a wrong sample")


def train_pipeline_bcpg(ctx: MethodContext, default_beta: float = 0.5) -> str:
    """BCPG-NSA (or BCPG with β = 1) on the pipeline's shared data, LoRA on the base.

    Options (YAML ``method_options``): ``beta``, ``annotator`` (default ``mc``: the pipeline's labels),
    ``consensus_sources`` / ``consensus_rule`` / ``prm_model`` / ``judge_model`` (see ``BCPGRunConfig``), ``lora``,
    and any ``BCPGNSAConfig`` field (``tau``, ``normalization``, ``learning_rate``, ...).
    """
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer

    built = bcpg_data(ctx)
    built.require("bcpg" if default_beta == 1.0 else "bcpg_nsa")
    own = {k: ctx.options[k] for k in _BCPG_KEYS if k in ctx.options}
    run_cfg = BCPGRunConfig(**{"annotator": "mc", "beta": default_beta, **own})
    train_ctx = dataclasses.replace(ctx, options={k: v for k, v in ctx.options.items() if k not in _BCPG_KEYS})
    # lr 1e-3 collapses the tiny policy (the negative-advantage term is unbounded; runs/bcpg/experiment): 1e-4.
    args = BCPGNSAConfig(**trainer_kwargs(train_ctx, {"learning_rate": 1e-4, "max_length": 512}))
    model, tokenizer = load_base(ctx)
    samples = pipeline_samples(ctx, model, tokenizer, args.max_length)
    mined = mine_correct_steps(samples, pipeline_labels(ctx, run_cfg, samples, model, tokenizer), run_cfg.annotator)
    dataset = bcpg_dataset(mined, tokenizer, run_cfg.beta, args.max_length)
    if len(dataset) == 0:  # every mixed sample dropped by the mining (e.g. longer than max_length)
        raise MethodSkipped("bcpg", f"no rows left of {len(samples)} samples after mining", built.stats.as_dict())
    stats = mining_stats(mined, ctx.data.problems, tokenizer, args.max_length) if embedded_problems(ctx.data.problems) else {}
    model.train()
    trainer = BCPGNSATrainer(model, args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora_config(train_ctx.options))
    train_resuming(trainer)
    out = finish(ctx, trainer, tokenizer, dataset, built.stats)  # build: the mixed-problem samples it came from
    info = {"beta": run_cfg.beta, "annotator": run_cfg.annotator, "samples": len(samples),
            "negatives": sum(s.is_negative for s in samples), "mining": stats}
    (Path(out) / "bcpg.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return out


@register_method("bcpg", data=bcpg_data, step_labels=True)
def train_bcpg_plain(ctx: MethodContext) -> str:
    """Plain BCPG (β = 1: every token of a negative penalised alike)."""
    return train_pipeline_bcpg(dataclasses.replace(ctx, options={**ctx.options, "beta": 1.0}), default_beta=1.0)


@register_method("bcpg_nsa", data=bcpg_data, step_labels=True)
def train_bcpg_nsa(ctx: MethodContext) -> str:
    """BCPG-NSA: mined correct steps of negatives get their penalty scaled by β (default 0.5)."""
    return train_pipeline_bcpg(ctx)


# ---------------------------------------------------------------------------------------------------------------
# Preflight: which methods the shared data can feed, before any training
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Preflight:
    """Counts of the shared data and, per method, what its builder makes of it (``preflight``).

    Attributes:
        samples: ``correct`` / ``wrong`` / ``unjudged`` rollouts.
        prompts: ``all_wrong`` / ``all_correct`` / ``mixed`` prompts (by their judged samples; ``unjudged``: none).
        pits: Wrong rollouts whose step labels have a critical step.
        methods: Method name → ``{"kept", "dropped", "skip"}`` (``skip`` ``None``: the data feeds it).
    """

    samples: dict[str, int]
    prompts: dict[str, int]
    pits: int
    methods: dict[str, dict[str, Any]]

    @property
    def fed(self) -> list[str]:
        return [m for m, r in self.methods.items() if r["skip"] is None]

    def format(self) -> str:
        """A few lines for the log: the counts, then one line per method."""
        head = (f"preflight: samples {self.samples}; prompts {self.prompts}; wrong samples with a critical step "
                f"{self.pits}")
        lines = [head]
        for m, r in self.methods.items():
            if r["kept"] is None:
                lines.append(f"  {m}: ok (trains on nothing)")
                continue
            what = "ok" if r["skip"] is None else f"skipped: {r['skip']}"
            lines.append(f"  {m}: {what} (kept {r['kept']}, dropped {r['dropped']})")
        return "\n".join(lines)


def preflight(cfg: PipelineConfig, data: PipelineData,
              methods: Sequence[tuple[str, str, dict[str, Any]]] | None = None) -> Preflight:
    """What the data can feed: runs each method's data function (no model, nothing written).

    ``methods``: ``(name, registered method, options)`` triples (default: ``cfg.methods`` with
    ``cfg.method_options``); a method without a data function (``base``) is always fed.
    """
    if methods is None:
        methods = [(m, m, cfg.method_options.get(m, {})) for m in cfg.methods]
    groups = group_rollouts(data.problems, data.rollouts, data.verdicts)
    correct, wrong = sum(len(g.correct) for g in groups), sum(len(g.wrong) for g in groups)
    prompts = {"all_wrong": 0, "all_correct": 0, "mixed": 0, "unjudged": 0}
    for g in groups:
        key = ("mixed" if g.wrong else "all_correct") if g.correct else ("all_wrong" if g.wrong else "unjudged")
        prompts[key] += 1
    wrong_ids = {r.rollout_id for g in groups for r in g.wrong}
    pits = sum(1 for sl in data.step_labels if sl.rollout_id in wrong_ids and sl.first_error is not None)
    report: dict[str, dict[str, Any]] = {}
    for name, method, options in methods:
        if method not in METHOD_DATA:
            report[name] = {"kept": None, "dropped": {}, "skip": None}
            continue
        ctx = MethodContext(config=cfg, data=data, options=dict(options), output_dir=cfg.run_dir / "models" / name,
                            seed=cfg.seed)
        built = METHOD_DATA[method](ctx)
        report[name] = {**built.stats.as_dict(), "skip": built.skip}
    samples = {"correct": correct, "wrong": wrong, "unjudged": len(data.rollouts) - correct - wrong}
    return Preflight(samples, prompts, pits, report)
