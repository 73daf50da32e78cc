"""The method registry: every method of a comparison trains one policy from the base on the shared data.

A method is a function ``fn(MethodContext) -> model directory``, registered under its name with
``@register_method("name")``; ``METHODS`` is the registry (``negrl.experiments.compare`` runs its entries, YAML
``methods:`` lists them). BCPG-NSA registers here like every other method. Adding a method: write the builder
(``negrl.builders``) and trainer (``negrl.trainers``) in the library, then one function here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets import Dataset

from negrl.builders import AWRRowConfig, BuildStats, PairConfig, awr_rows, outcome_dpo_pairs, rft_rows, step_dpo_pairs
from negrl.builders.bcpg import (
    BCPGDataConfig,
    BCPGSample,
    bcpg_dataset,
    build_bcpg_samples,
    mine_correct_steps,
    mining_stats,
)
from negrl.experiments.bcpg import BCPGRunConfig, embedded_problems, label_settings
from negrl.experiments.pipeline import MethodContext, MethodFn
from negrl.lora import lora_config as default_lora_config
from negrl.processes import process_state
from negrl.records import StepLabels
from negrl.steps.monte_carlo import mc_continuations
from negrl.steps.sources import label_steps
from negrl.trainers.resume import train_resuming


METHODS: dict[str, MethodFn] = {}


def register_method(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as method ``name`` (a name registered twice is an error, not a silent replacement)."""

    def add(fn: MethodFn) -> MethodFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered ({METHODS[name].__qualname__})")
        METHODS[name] = fn
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
                "options": jsonable(ctx.options)}
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
    model, tokenizer = load_base(ctx)
    args = cpu_safe_sft_config(**trainer_kwargs(ctx, {"learning_rate": 1e-3}))
    rows = dataset.select_columns(["prompt", "completion"])
    trainer = train_sft(model, tokenizer, rows, args, peft_config=lora_config(ctx.options))
    return finish(ctx, trainer, tokenizer, dataset, None)


@register_method("base")
def train_base(ctx: MethodContext) -> str:
    """The base policy itself (no training): the reference row of the table."""
    return ctx.config.base_policy


@register_method("sft_more")
def train_sft_more(ctx: MethodContext) -> str:
    """SFT on the *gold* solutions of the post-training prompts ("more gold data" baseline; reads gold)."""
    from negrl.sft import gold_dataset

    return _train_sft_rows(ctx, "sft_more", gold_dataset(ctx.data.problems))


@register_method("rft")
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
    model, tokenizer = load_base(ctx)
    args = StepDPOConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-4, "beta": 0.3, "rpo_alpha": 1.0,
                                                "max_length": 512}))
    trainer = StepDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora_config(ctx.options))
    train_resuming(trainer)
    return finish(ctx, trainer, tokenizer, dataset, stats)


def _pairs(ctx: MethodContext, fmt: str | None) -> tuple[Dataset, BuildStats]:
    d, stats = ctx.data, BuildStats()
    spec = {"seed": ctx.seed, **ctx.options.get("pairs", {})}
    prompt_fn = d.prompt_fn(ctx.config.use_chat_template)
    if fmt is None:
        return outcome_dpo_pairs(d.problems, d.rollouts, d.verdicts, PairConfig(**spec), prompt_fn, stats), stats
    cfg = PairConfig(**{**spec, "format": fmt})
    # shared-prefix pairs also take the correct Monte-Carlo continuations found from the prefix before the pit
    conts = mc_continuations(d.step_labels, d.rollouts) if fmt == "shared_prefix" else None
    return step_dpo_pairs(d.problems, d.rollouts, d.verdicts, d.step_labels, cfg, prompt_fn, conts, stats), stats


@register_method("outcome_dpo")
def train_outcome_dpo(ctx: MethodContext) -> str:
    """Outcome-level DPO baseline: random correct vs whole wrong self-samples."""
    return _train_pairs(ctx, "outcome_dpo", *_pairs(ctx, None))


@register_method("step_dpo")
def train_step_dpo(ctx: MethodContext) -> str:
    """Per-step DPO, paper format: negatives truncated after their critical step (no EOS)."""
    return _train_pairs(ctx, "step_dpo", *_pairs(ctx, "paper"))


@register_method("step_dpo_prefix")
def train_step_dpo_prefix(ctx: MethodContext) -> str:
    """Per-step DPO, shared-prefix format (Theorem 6.1 / Self-Explore)."""
    return _train_pairs(ctx, "step_dpo_prefix", *_pairs(ctx, "shared_prefix"))


@register_method("awr")
def train_awr(ctx: MethodContext) -> str:
    """Advantage-weighted RL on positive and (critical-step-truncated) negative rollouts."""
    from negrl.trainers.awr import AWRConfig, AWRTrainer

    d, stats = ctx.data, BuildStats()
    rows = awr_rows(d.problems, d.rollouts, d.verdicts, d.step_labels, AWRRowConfig(**ctx.options.get("rows", {})),
                    d.prompt_fn(ctx.config.use_chat_template), stats)
    _dump(ctx, "awr", rows)
    model, tokenizer = load_base(ctx)
    tokenizer.padding_side = "right"
    args = AWRConfig(**trainer_kwargs(ctx, {"learning_rate": 1e-3, "beta": 0.5, "max_length": 512}))
    trainer = AWRTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                         peft_config=lora_config(ctx.options))
    train_resuming(trainer)
    return finish(ctx, trainer, tokenizer, rows, stats)


def jsonable(options: dict[str, Any]) -> Any:
    """Options as they are stored in ``done.json`` (and compared on a rerun)."""
    return json.loads(json.dumps(options, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------------------------
# BCPG-NSA on the shared data (the annotators are negrl.steps.sources; rounds are negrl.experiments.bcpg)
# ---------------------------------------------------------------------------------------------------------------

_BCPG_KEYS = ("beta", "annotator", "consensus_sources", "consensus_rule", "prm_model", "prm_threshold",
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


def train_pipeline_bcpg(ctx: MethodContext, default_beta: float = 0.5) -> str:
    """BCPG-NSA (or BCPG with β = 1) on the pipeline's shared data, LoRA on the base.

    Options (YAML ``method_options``): ``beta``, ``annotator`` (default ``mc``: the pipeline's labels),
    ``consensus_sources`` / ``consensus_rule`` / ``prm_model`` / ``judge_model`` (see ``BCPGRunConfig``), ``lora``,
    and any ``BCPGNSAConfig`` field (``tau``, ``normalization``, ``learning_rate``, ...).
    """
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer

    own = {k: ctx.options[k] for k in _BCPG_KEYS if k in ctx.options}
    run_cfg = BCPGRunConfig(**{"annotator": "mc", "beta": default_beta, **own})
    train_ctx = dataclasses.replace(ctx, options={k: v for k, v in ctx.options.items() if k not in _BCPG_KEYS})
    # lr 1e-3 collapses the tiny policy (the negative-advantage term is unbounded; runs/bcpg/experiment): 1e-4.
    args = BCPGNSAConfig(**trainer_kwargs(train_ctx, {"learning_rate": 1e-4, "max_length": 512}))
    model, tokenizer = load_base(ctx)
    samples = pipeline_samples(ctx, model, tokenizer, args.max_length)
    mined = mine_correct_steps(samples, pipeline_labels(ctx, run_cfg, samples, model, tokenizer), run_cfg.annotator)
    dataset = bcpg_dataset(mined, tokenizer, run_cfg.beta, args.max_length)
    if len(dataset) == 0:
        raise ValueError("BCPG-NSA: no problem has both correct and wrong samples (nothing to train on)")
    stats = mining_stats(mined, ctx.data.problems, tokenizer, args.max_length) if embedded_problems(ctx.data.problems) else {}
    model.train()
    trainer = BCPGNSATrainer(model, args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora_config(train_ctx.options))
    train_resuming(trainer)
    out = finish(ctx, trainer, tokenizer, dataset, None)
    info = {"beta": run_cfg.beta, "annotator": run_cfg.annotator, "samples": len(samples),
            "negatives": sum(s.is_negative for s in samples), "mining": stats}
    (Path(out) / "bcpg.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return out


@register_method("bcpg")
def train_bcpg_plain(ctx: MethodContext) -> str:
    """Plain BCPG (β = 1: every token of a negative penalised alike)."""
    return train_pipeline_bcpg(dataclasses.replace(ctx, options={**ctx.options, "beta": 1.0}), default_beta=1.0)


@register_method("bcpg_nsa")
def train_bcpg_nsa(ctx: MethodContext) -> str:
    """BCPG-NSA: mined correct steps of negatives get their penalty scaled by β (default 0.5)."""
    return train_pipeline_bcpg(ctx)
