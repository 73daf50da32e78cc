"""The shared data of a method comparison: base policy → prompts → rollouts → verdicts → Monte-Carlo step labels.

    prompts (disjoint from the held-out test set) ─ sample S per prompt (T=1) ─▶ rollouts ─ verify ─▶ verdicts
      ─ Monte-Carlo step labels (negrl.steps.monte_carlo) ─▶ PipelineData (what every method trains on)

The methods that train on it are ``negrl.experiments.methods`` (one registry, ``METHODS``); running and evaluating
them is ``negrl.experiments.compare``. Every stage is cached on disk under ``output_dir/seed{seed}/`` and reused on a
rerun (``negrl.io`` stages: shards + manifest written last, so an interrupted stage resumes; trained models carry a
``done.json``; evaluations a JSON):

    problems/ rollouts/ verdicts/ step_labels/    the post-training data (shared by all methods: equal problems)
    data/<method>.jsonl                           the dataset each method trained on (inspection)
    models/<method>/                              trained policy (LoRA merged) + done.json
    eval/<method>.json                            held-out accuracy
    config.yaml                                   the resolved configuration

Post-training sees only prompts and the verifier; only ``sft_more`` (the "more gold data" baseline) reads gold
solutions, of the *same* prompts.

The test set is the base policy's held-out split when its directory holds one (``problems/test``, written by
``recipes/sft.py``), so evaluation never touches the base's gold training problems; post-training prompts exclude
both the base's train and test problems.

Several processes (``torchrun --nproc_per_node 2``, ``accelerate launch`` on GPUs): sampling runs on the main
process first (the others then read its finished stage), Monte-Carlo labelling splits its work units across the
processes, training is data-parallel (TRL / transformers), and saving and evaluation run on the main process.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.experiments.config import build, read_yaml
from negrl.experiments.config import write_resolved_config as write_config_file
from negrl.generation import GenerationConfig, format_prompt, generate_rollouts
from negrl.io import StageWriter, cached_stage, is_complete, read_stage
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
        methods: Methods to run (keys of ``negrl.experiments.methods.METHODS``).
        method_options: Per-method options: ``lora`` (LoraConfig kwargs, or ``false`` for full fine-tuning),
            ``pairs`` (``PairConfig``), ``rows`` (``AWRRowConfig``); every other key goes to the trainer config.
        eval_samples: Sampled draws per test problem (sampled accuracy, at ``temperature`` and with the chat
            template flag of sampling); greedy is always measured.
        run_subdir: Directory of this run under ``output_dir`` (default ``seed{seed}``).
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
    run_subdir: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> PipelineConfig:
        return build(cls, d, where)

    @property
    def run_dir(self) -> Path:
        """``output_dir/seed{seed}``, or ``output_dir/run_subdir`` when set (the rounds harness names its own)."""
        return Path(self.output_dir) / (self.run_subdir or f"seed{self.seed}")


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
    """A real benchmark (``negrl.problems``): prompts = a seeded sample of its train split, test = its test split."""
    import random

    from negrl.problems import load_problems

    train = load_problems(cfg.task, split="train", **cfg.task_kwargs)
    if len(train) < cfg.n_prompts:
        raise ValueError(f"{cfg.task}: train split has {len(train)} problems, n_prompts={cfg.n_prompts}")
    prompts = random.Random(f"prompts/{cfg.seed}").sample(train, cfg.n_prompts)
    return prompts, load_problems(cfg.task, split="test", limit=cfg.n_test, **cfg.task_kwargs)


def split_problems(cfg: PipelineConfig) -> tuple[list[Problem], list[Problem]]:
    """(post-training prompts, test problems): test = the base's held-out split when present; prompts exclude all."""
    from negrl.problems import is_benchmark

    if is_benchmark(cfg.task):
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
                           use_chat_template=cfg.use_chat_template, show_progress=cfg.show_progress)
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


def prepare_data(cfg: PipelineConfig, model: Any = None, tokenizer: Any = None,
                 splits: tuple[list[Problem], list[Problem]] | None = None, label: bool = True,
                 mc_stats: Any = None) -> PipelineData:
    """Run (or reuse) the data stages of one seed; every process gets the full data.

    ``splits``: the (post-training prompts, test problems) to use instead of ``split_problems(cfg)`` (the rounds
    harness keeps one pool while the policy changes). ``label=False`` skips Monte-Carlo labelling (methods that
    read no step labels: ``step_labels`` is then empty). ``mc_stats``: a ``MonteCarloStats`` the labelling adds to.
    """
    from negrl.modeling import load_policy
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo

    if model is None:
        model, tokenizer = load_policy(cfg.base_policy)
    prompts, test = splits if splits is not None else split_problems(cfg)
    state = process_state()
    with state.main_process_first():
        problems = cached_stage(cfg.run_dir / "problems", Problem, lambda: prompts,
                                {"seed": cfg.seed, "n_prompts": cfg.n_prompts, "task": cfg.task})
        rollouts = sample_rollouts(cfg, problems, model, tokenizer)
        verdicts = cached_stage(cfg.run_dir / "verdicts", Verdict, lambda: verify_rollouts(problems, rollouts),
                                {"seed": cfg.seed, "rollouts": len(rollouts)})
    mc = MonteCarloConfig(**{"seed": cfg.seed, "use_chat_template": cfg.use_chat_template,
                             "max_new_tokens": cfg.max_new_tokens, "show_progress": cfg.show_progress, **cfg.mc})
    # `mc: {backend: vllm}`: continuations come from a vLLM engine of the same policy (one engine per process).
    if mc.backend == "vllm":
        from negrl.generation.vllm import VLLMPolicy

        mc_model = VLLMPolicy(cfg.base_policy)
    else:
        mc_model = model
    labels = (label_monte_carlo(problems, rollouts, verdicts, mc_model, tokenizer, mc,
                                out_dir=cfg.run_dir / "step_labels", stats=mc_stats) if label else [])
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


def write_resolved_config(cfg: PipelineConfig) -> None:
    """``run_dir/config.yaml`` (main process)."""
    if process_state().is_main_process:
        write_config_file(cfg.run_dir / "config.yaml", cfg)


def load_pipeline_config(path: str | os.PathLike | None, **overrides: Any) -> PipelineConfig:
    """``PipelineConfig`` from a YAML file plus non-None ``overrides``; an unknown or mistyped key is an error naming
    the file (``negrl.experiments.config``)."""
    d: dict[str, Any] = read_yaml(path) if path is not None else {}
    d.update({k: v for k, v in overrides.items() if v is not None})
    return build(PipelineConfig, d, str(path or "overrides"))
