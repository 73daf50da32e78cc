"""BCPG-NSA end to end: sample → verify → label the steps of negatives → build rows → train (LoRA), and rounds.

One *round* (``run_round``) from a policy directory:

    problems ─ generate (G per problem, behaviour policy) ─▶ Rollout ─ verify ─▶ Verdict
        ─ build_bcpg_samples (mixed groups, r − r̄, log π_ref) ─▶ BCPGSample
        ─ annotator (StepLabels of the negatives) ─▶ mined correct steps ─ bcpg_dataset(β) ─▶ BCPGNSATrainer (LoRA)
        ─▶ merged policy directory + held-out evaluation

Every stage is cached on disk under the round directory (``negrl.io`` stages: a rerun reuses finished stages and
resumes interrupted ones). ``run_rounds`` repeats rounds, each from the previous round's policy (which is then the
behaviour policy of the next round's data, as in the paper's iterations).

Sampling follows ``backend``. ``hf``: the round's torch policy samples (Hugging Face ``generate``). ``vllm``: one
vLLM engine per process, built once from ``policy`` (the base, with ``enable_lora``) on first use and reused by every
round, by Monte-Carlo labelling and by a resumed run. Round ``r`` samples (and Monte-Carlo-labels) with round
``r − 1``'s policy as a LoRA adapter of that base (``vllm.lora.request.LoRARequest``): each round trains a fresh
LoRA on the previous round's merged policy, exactly as on ``hf``, and ``negrl.lora.stack_lora_adapters`` writes the
rounds so far as one adapter on the base (``round-XX/policy/stacked_adapter``, rank ``lora_r × (r + 1)``; the
engine's ``max_lora_rank`` holds ``lora_r × rounds``). Round ``r``'s held-out evaluation samples its own stacked
adapter on the engine. The torch policy computes the behaviour log-probs and trains; the engine sleeps
(``LLM.sleep(level=1)``, weights in CPU memory) while it trains (``vllm_sleep``).

Annotators (``ANNOTATORS``: the library's one dispatcher, ``negrl.steps.sources``): ``"consensus"`` (the paper:
LLM judge and PRM, rule ``and``; sources and rule configurable), ``"mc"`` (Monte-Carlo values), ``"prm"``,
``"judge"``, and ``"oracle"`` (the embedded task's exact checker, for ablations only).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.builders.bcpg import (
    BCPGDataConfig,
    BCPGSample,
    bcpg_dataset,
    build_bcpg_samples,
    mine_correct_steps,
    mining_stats,
)
from negrl.experiments.config import write_resolved_config
from negrl.experiments.pipeline import PipelineConfig
from negrl.experiments.pipeline import prepare_data as prepare_pipeline_data
from negrl.generation import GenerationConfig, generate_rollouts
from negrl.io import StageError, cached_stage, ids_digest, read_stage
from negrl.lora import lora_config as default_lora_config
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.steps.sources import LABEL_SOURCES as ANNOTATORS
from negrl.steps.sources import LabelSettings, label_source, label_steps
from negrl.verifiers import verify_rollouts


@dataclass
class BCPGRunConfig:
    """What one BCPG-NSA round samples, how negatives are labelled, and how it is evaluated (YAML / CLI fields).

    Problems come either from an embedded task (``task``; post-training problems are drawn disjoint from the base
    policy's ``problems/train`` and ``problems/test`` stages when they exist) or from a benchmark loader
    (``benchmark``, ``negrl.problems.load_problems``).
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
    backend: str = field(default="hf", metadata={"help": "'hf' or 'vllm' (one engine of `policy`, LoRA per round)."})
    vllm_gpu_memory_utilization: float = field(
        default=0.5, metadata={"help": "GPU memory share of the vLLM engine (the torch policy shares the GPU)."})
    vllm_sleep: bool = field(default=True, metadata={"help": "Put the vLLM engine to sleep while the policy trains."})
    use_chat_template: bool = field(default=False, metadata={"help": "Wrap prompts in the chat template."})
    annotator: str = field(default="consensus", metadata={"help": "consensus | mc | prm | judge | oracle."})
    consensus_sources: list[str] = field(default_factory=lambda: ["judge", "prm"])
    consensus_rule: str = field(default="and", metadata={"help": "and (paper) | or | vote."})
    segment_rule: str = field(default="lines", metadata={"help": "negrl.steps.segment rule."})
    mc_k: int = field(default=4, metadata={"help": "Monte-Carlo continuations per step prefix."})
    prm_model: str | None = field(default=None, metadata={"help": "Trained PRM directory (annotator prm)."})
    prm_threshold: float = field(default=0.5, metadata={"help": "PRM step score threshold λ."})
    prm_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "PRMScorer.from_pretrained options (family, trust_remote_code, PRMFormat fields)."})
    judge_model: str | None = field(default=None, metadata={"help": "Judge LM (default: the policy itself)."})
    logp_batch_size: int = field(default=64, metadata={"help": "Rows per forward pass for behaviour log-probs."})
    beta: float = field(default=0.5, metadata={"help": "β on mined correct steps of negatives (paper: 0.5)."})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"
    eval_problems: int = field(default=512, metadata={"help": "Held-out problems evaluated (0 = skip)."})
    eval_samples: int = field(default=2, metadata={"help": "Sampled draws per held-out problem (at `temperature`)."})
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


def round_problems(cfg: BCPGRunConfig, seed_offset: int = 0) -> tuple[list[Problem], list[Problem]]:
    """``(post-training problems, held-out problems)`` for a round; never overlapping."""
    if cfg.benchmark:
        from negrl.problems import load_problems

        train = load_problems(cfg.benchmark, path=cfg.benchmark_path, split=cfg.benchmark_split,
                               limit=cfg.n_problems)
        held = load_problems(cfg.eval_benchmark, limit=cfg.eval_problems) if cfg.eval_benchmark else []
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


STACKED_ADAPTER = "stacked_adapter"  # in a round's policy directory: the rounds so far as one adapter on the base


def vllm_sampler(cfg: BCPGRunConfig, policy: str) -> Any:
    """The ``VLLMPolicy`` that samples from ``policy`` on the engine of ``cfg.policy`` (built on first use).

    ``policy`` is ``cfg.policy`` itself (the base: no adapter) or a round's policy directory, whose
    ``stacked_adapter`` (written by ``run_round``) is the LoRA adapter of that policy relative to ``cfg.policy``.
    """
    from negrl.generation.vllm import VLLMPolicy, max_lora_rank, require_vllm
    from negrl.modeling import SMOLLM2_ALIASES
    from negrl.processes import num_processes

    require_vllm("backend")
    if cfg.policy in SMOLLM2_ALIASES:
        raise ValueError(f"backend: vllm needs policy to be a model directory or hub id vLLM loads; {cfg.policy!r} is "
                         f"negrl's offline GGUF alias (use backend: hf, or the original checkpoint's directory)")
    if num_processes() > 1:
        raise RuntimeError(f"backend: vllm builds one engine in one process, but this run has {num_processes()} "
                           f"processes (accelerate launch); run the rounds as one process or use backend: hf")
    # One engine serves every round: its max_lora_rank holds the last round's stacked adapter (evaluated too).
    engine_args = {"enable_lora": True, "max_loras": 1, "max_lora_rank": max_lora_rank(cfg.lora_r * cfg.rounds),
                   "gpu_memory_utilization": cfg.vllm_gpu_memory_utilization, "enable_sleep_mode": cfg.vllm_sleep}
    if str(policy) == str(cfg.policy):
        return VLLMPolicy(cfg.policy, engine_args)
    adapter = Path(policy) / STACKED_ADAPTER
    config_path = adapter / "adapter_config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"backend: vllm samples round policies as LoRA adapters of policy {cfg.policy!r}, but "
                                f"{policy} has no {STACKED_ADAPTER}/ (not a policy written by a vLLM round)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("base_model_name_or_path") != str(cfg.policy):
        raise ValueError(f"{adapter} adapts {config.get('base_model_name_or_path')!r}, not policy {cfg.policy!r}")
    if config["r"] > engine_args["max_lora_rank"]:
        raise ValueError(f"{adapter} has rank {config['r']} > the engine's max_lora_rank "
                         f"{engine_args['max_lora_rank']} (lora_r × rounds); set rounds to the run's count")
    return VLLMPolicy(cfg.policy, engine_args, adapter=str(adapter))


def sample_and_verify(
    problems: Sequence[Problem], model: Any, tokenizer: Any, cfg: BCPGRunConfig, seed: int, out_dir: Path
) -> tuple[list[Rollout], list[Verdict]]:
    """G samples per problem from the behaviour policy and their verdicts, cached as stages under ``out_dir``.

    ``model`` samples: the torch policy (``backend: hf``) or a ``VLLMPolicy`` (``backend: vllm``, ``vllm_sampler``).
    """
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


def label_settings(cfg: BCPGRunConfig, seed: int) -> LabelSettings:
    """The annotator settings of a run for ``negrl.steps.sources`` (they key each source's cached labels)."""
    from negrl.steps.monte_carlo import MonteCarloConfig

    mc = MonteCarloConfig(k=cfg.mc_k, max_new_tokens=cfg.max_new_tokens, seed=seed, segment_rule=cfg.segment_rule,
                          use_chat_template=cfg.use_chat_template, batch_size=cfg.gen_batch_size, show_progress=False,
                          backend=cfg.backend)
    return LabelSettings(segment_rule=cfg.segment_rule, mc=mc, prm_model=cfg.prm_model,
                         prm_threshold=cfg.prm_threshold, prm_options=dict(cfg.prm_options) or None,
                         judge_model=cfg.judge_model,
                         consensus_sources=list(cfg.consensus_sources), consensus_rule=cfg.consensus_rule)


def annotate(cfg: BCPGRunConfig, problems: list[Problem], negatives: list[Rollout], verdicts: list[Verdict],
             model: Any, tokenizer: Any, seed: int, out_dir: Path, sampler: Any = None) -> list[StepLabels]:
    """Step labels of the negatives from ``cfg.annotator``, cached as ``out_dir/labels-{source}-{digest}``.

    ``sampler`` (default ``model``) continues the Monte-Carlo prefixes (the round's ``VLLMPolicy`` on vLLM); the
    torch ``model`` stays the judge's default.
    """
    if cfg.annotator not in ANNOTATORS:
        raise ValueError(f"unknown annotator {cfg.annotator!r}; expected one of {ANNOTATORS}")
    settings = label_settings(cfg, seed)
    sources = cfg.consensus_sources if cfg.annotator == "consensus" else [cfg.annotator]
    pre: dict[str, list[StepLabels]] = {}
    if sampler is not None and sampler is not model and "mc" in sources:
        pre["mc"] = label_source("mc", problems, negatives, verdicts, settings, sampler, tokenizer, cache_dir=out_dir)
    return label_steps(cfg.annotator, problems, negatives, verdicts, settings, model, tokenizer, cache_dir=out_dir,
                       precomputed=pre)


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
                 round_index: int = 0, max_length: int | None = 1024, sampler: Any = None) -> RoundData:
    """Sample (with ``sampler``, default ``model``), verify and build BCPG samples (behaviour log-probs from the
    torch ``model``), all cached under ``out_dir``."""
    problems, held = round_problems(cfg, seed_offset=1000 * round_index)
    rollouts, verdicts = sample_and_verify(problems, model if sampler is None else sampler, tokenizer, cfg, seed,
                                           out_dir)
    data_cfg = BCPGDataConfig(max_length=max_length, use_chat_template=cfg.use_chat_template,
                              logp_batch_size=cfg.logp_batch_size)
    samples = build_bcpg_samples(problems, rollouts, verdicts, model, tokenizer, data_cfg, out_dir / "samples")
    return RoundData(problems, held, rollouts, verdicts, samples)


def mine(data: RoundData, cfg: BCPGRunConfig, model: Any, tokenizer: Any, seed: int, out_dir: Path,
         max_length: int | None = 1024, sampler: Any = None) -> tuple[list[BCPGSample], dict[str, float]]:
    """Label the negatives with ``cfg.annotator`` (Monte-Carlo continuations from ``sampler``, default ``model``),
    mine their correct steps; stats against the exact checker."""
    neg_ids = {s.rollout_id for s in data.samples if s.is_negative}
    negatives = [r for r in data.rollouts if r.rollout_id in neg_ids]
    labels = annotate(cfg, data.problems, negatives, data.verdicts, model, tokenizer, seed, out_dir, sampler)
    mined = mine_correct_steps(data.samples, labels, cfg.annotator)
    stats = mining_stats(mined, data.problems, tokenizer, max_length) if embedded_problems(data.problems) else {}
    return mined, stats


def embedded_problems(problems: Sequence[Problem]) -> bool:
    """Do these problems have an exact step checker (embedded tasks), so mining precision can be measured?"""
    from negrl.tasks import DOMAIN_TO_TASK

    return bool(problems) and all(p.domain in DOMAIN_TO_TASK for p in problems)


def lora_config(cfg: BCPGRunConfig) -> Any:
    """The run's adapter: negrl's LoRA default with the ``lora_*`` fields of ``cfg``."""
    return default_lora_config(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                               target_modules=cfg.lora_target_modules)


def run_args(args: Any, output_dir: Path, seed: int) -> Any:
    """A copy of training arguments with this run's output directory and seed."""
    import copy

    out = copy.copy(args)
    out.output_dir, out.seed = str(output_dir), seed
    return out


def evaluate(model: Any, tokenizer: Any, held_out: Sequence[Problem], cfg: BCPGRunConfig, seed: int) -> dict:
    """Held-out greedy and sampled accuracy (``negrl.evaluation``) of ``model`` (a ``VLLMPolicy`` on vLLM)."""
    from negrl.evaluation import evaluate_policy

    if not held_out:
        return {}
    # The prompt format and temperature of sampling: a policy trained on chat prompts is scored on chat prompts.
    ev = evaluate_policy(held_out, model, tokenizer, max_new_tokens=cfg.max_new_tokens, samples=cfg.eval_samples,
                         temperature=cfg.temperature, seed=seed, batch_size=cfg.gen_batch_size,
                         use_chat_template=cfg.use_chat_template, backend=cfg.backend)
    return ev.as_dict()


def run_round(cfg: BCPGRunConfig, args: Any, policy: str, out_dir: Path, seed: int, round_index: int = 0) -> dict:
    """One round from ``policy``: data, mining, BCPG-NSA training (LoRA), merged policy, held-out metrics."""
    from negrl.modeling import check_local_model_path, load_policy, save_merged_policy
    from negrl.trainers.bcpg_nsa import train_bcpg_nsa

    check_local_model_path(policy)  # "no such directory" before the round's directory is written
    # Checked as early: vLLM importable, one process, the policy's stacked adapter. The engine starts on first use.
    sampler = vllm_sampler(cfg, policy) if cfg.backend == "vllm" else None
    out_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_config(out_dir / "config.yaml", {"bcpg": cfg, "training": args})
    model, tokenizer = load_policy(policy)
    sampler = model if sampler is None else sampler
    data = prepare_data(cfg, model, tokenizer, seed, out_dir, round_index, args.max_length, sampler)
    mined, stats = mine(data, cfg, model, tokenizer, seed, out_dir, args.max_length, sampler)
    dataset = bcpg_dataset(mined, tokenizer, cfg.beta, args.max_length)
    with _engine_asleep(cfg):  # the torch policy trains in the GPU memory the engine frees
        trainer = train_bcpg_nsa(model, tokenizer, dataset, run_args(args, out_dir / "trainer", seed),
                                 peft_config=lora_config(cfg))
        model = save_merged_policy(trainer.model, tokenizer, out_dir / "policy")
    if cfg.backend == "vllm":  # the trained policy goes back to the engine: held-out eval, the next round
        _stack_round_adapter(cfg, policy, out_dir / "policy")
        model = vllm_sampler(cfg, str(out_dir / "policy"))
    held_out = evaluate(model, tokenizer, data.held_out, cfg, seed)
    metrics = {"round": round_index, "policy": str(out_dir / "policy"), "samples": len(data.samples),
               "negatives": sum(s.is_negative for s in data.samples), "rows": len(dataset),
               "mining": stats, "held_out": held_out}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def _engine_asleep(cfg: BCPGRunConfig) -> Any:
    """``negrl.generation.vllm.engine_asleep`` on vLLM runs (a no-op context otherwise, or without ``vllm_sleep``)."""
    import contextlib

    if cfg.backend != "vllm":
        return contextlib.nullcontext()
    from negrl.generation.vllm import engine_asleep

    return engine_asleep()


def _stack_round_adapter(cfg: BCPGRunConfig, policy: str, policy_dir: Path) -> Path:
    """``policy_dir/stacked_adapter``: the behaviour policy's stacked adapter (none for the base) followed by this
    round's adapter (``policy_dir/adapter``), as one adapter on ``cfg.policy`` for the next round's engine."""
    from negrl.lora import stack_lora_adapters
    from negrl.modeling import ADAPTER_DIR

    before = [] if str(policy) == str(cfg.policy) else [Path(policy) / STACKED_ADAPTER]
    return stack_lora_adapters([*before, policy_dir / ADAPTER_DIR], policy_dir / STACKED_ADAPTER,
                               base_model=str(cfg.policy))


def run_rounds(cfg: BCPGRunConfig, args: Any, out_dir: Path, seed: int = 0) -> list[dict]:
    """``cfg.rounds`` rounds of generate → label → train, each from the previous round's merged policy."""
    policy, history = cfg.policy, []
    for r in range(cfg.rounds):
        metrics = run_round(cfg, args, policy, out_dir / f"round-{r:02d}", seed + r, round_index=r)
        history.append(metrics)
        policy = metrics["policy"]
    (out_dir / "rounds.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    return history


# --------------------------------------------------------------------------------------------------- experiment


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


def train_task_prm(pipeline_cfg: PipelineConfig, prm: TaskPRMConfig) -> str:
    """Train (or reuse) the PRM: the pipeline's data stages on a separate seed, MC labels of every rollout, LoRA PRM.

    Reuses ``negrl.experiments.pipeline.prepare_data`` (prompts disjoint from the test set) and ``negrl.steps.prm``; the PRM's
    prompts differ from each experiment seed's prompts because they are drawn with seed ``prm.seed``.
    """
    from negrl.modeling import load_policy
    from negrl.steps.prm import fit_prm

    out = Path(prm.output_dir)
    if (out / "prm.json").exists():
        return str(out)
    mc = {**pipeline_cfg.mc, "only_incorrect": False}
    cfg = dataclasses.replace(pipeline_cfg, seed=prm.seed, n_prompts=prm.n_prompts, mc=mc,
                              samples_per_prompt=prm.samples_per_prompt, output_dir=str(out / "data"))
    model, tokenizer = load_policy(cfg.base_policy)
    data = prepare_pipeline_data(cfg, model, tokenizer)
    fit_prm(model, tokenizer, data.problems, data.step_labels, out / "trainer", steps=prm.steps,
            learning_rate=prm.learning_rate, lora_r=prm.lora_r, seed=prm.seed, threshold=prm.threshold, save_to=out)
    return str(out)
