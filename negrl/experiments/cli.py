"""The ``negrl`` command: one entry point whose subcommands run the main stages and recipes.

    negrl sample  --config F [--set k=v ...]           problems → rollouts → verdicts (stages under output_dir)
    negrl label   --config F [--set k=v ...]           step labels of those rollouts (mc | prm | judge | oracle |
                                                       consensus), optionally as TRL stepwise rows
    negrl train base     --config F [--field value]    the embedded base policy (TrlParser: SFTConfig fields too)
    negrl train bcpg_nsa --config F [--field value]    one BCPG-NSA round (TrlParser: BCPGNSAConfig fields too)
    negrl train bcpg_rounds --config F ...             several BCPG-NSA rounds
    negrl train likra    --config F [--set k=v ...]    the two Likra heads
    negrl train <method> --config F [--set k=v ...]    a comparison method (step_dpo, awr, rft, ...) from a base
    negrl compare --config F [--seeds 0 1 2]           every method of the config, a table over seeds
    negrl eval    --config F [--set k=v ...]           held-out greedy / sampled accuracy of a policy
    negrl demo    [--config F] [--fresh]               `make demo`

Two grammars, by what a command reads: ``TrlParser`` (YAML ``--config`` plus ``--field value`` flags) where a TRL /
transformers ``TrainingArguments`` is among its inputs, else ``--config FILE --set key=value`` through
``negrl.experiments.config`` (values parsed by the field's type; errors name the file and the key). The few flags
besides those are run options (``--seeds``, ``--fresh``) or, for the comparison commands, the field flags they always
had (``--output_dir X`` is exactly ``--set output_dir=X``). The scripts in ``recipes/`` call these same functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from negrl.experiments.config import load_config, write_resolved_config


def config_parser(prog: str, description: str, config_required: bool = True) -> argparse.ArgumentParser:
    """``--config FILE`` and ``--set KEY=VALUE ...`` (repeatable), the grammar of every non-TRL command."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=config_required, default=None, help="YAML file of config fields")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config fields (dotted keys reach nested ones), e.g. --set seed=1 mc.k=4")
    return parser


# ------------------------------------------------------------------------------------------------ sample / eval


@dataclass
class SampleConfig:
    """``negrl sample``: rollouts of a policy on a problem set, verified, as stages a later ``negrl label`` reads.

    Writes ``output_dir/problems``, ``output_dir/rollouts``, ``output_dir/verdicts`` and ``config.yaml``.
    """

    policy: str = "runs/base/arithmetic"
    problems: str = "arithmetic"  # a negrl.problems name: a benchmark or an embedded task
    problem_kwargs: dict[str, Any] | None = None  # e.g. an embedded task's knobs, or a benchmark's path
    split: str = "test"
    limit: int | None = 64
    num_samples: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = 256
    use_chat_template: bool = False
    seed: int = 0
    output_dir: str = "runs/sample"


def sample(cfg: SampleConfig) -> dict[str, Any]:
    """Run ``negrl sample``; returns counts (problems, rollouts, verified correct / wrong / unknown)."""
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.io import cached_stage
    from negrl.modeling import load_policy
    from negrl.problems import load_problems
    from negrl.records import Problem, Rollout, Verdict
    from negrl.verifiers import verify_rollouts

    out = Path(cfg.output_dir)
    write_resolved_config(out / "config.yaml", cfg)
    key = {"problems": cfg.problems, "split": cfg.split, "limit": cfg.limit, **(cfg.problem_kwargs or {})}
    problems = cached_stage(out / "problems", Problem,
                            lambda: load_problems(cfg.problems, split=cfg.split, limit=cfg.limit,
                                                  **(cfg.problem_kwargs or {})), key)
    model, tokenizer = load_policy(cfg.policy)
    gen = GenerationConfig(num_samples=cfg.num_samples, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                           batch_size=cfg.batch_size, seed=cfg.seed, use_chat_template=cfg.use_chat_template)
    stage = {"policy": cfg.policy, "seed": cfg.seed, "num_samples": cfg.num_samples, "temperature": cfg.temperature,
             "max_new_tokens": cfg.max_new_tokens, "n_problems": len(problems)}
    rollouts = cached_stage(out / "rollouts", Rollout,
                            lambda: generate_rollouts(problems, model, tokenizer, gen, model_name=cfg.policy), stage)
    verdicts = cached_stage(out / "verdicts", Verdict, lambda: verify_rollouts(problems, rollouts), stage)
    counts = Counter("unknown" if v.correct is None else ("correct" if v.correct else "wrong") for v in verdicts)
    return {"problems": len(problems), "rollouts": len(rollouts), **dict(sorted(counts.items()))}


@dataclass
class EvaluateConfig:
    """``negrl eval``: held-out greedy (and sampled) accuracy of a policy on a problem set."""

    policy: str = "runs/base/arithmetic"
    problems: str = "arithmetic"
    problem_kwargs: dict[str, Any] | None = None
    split: str = "test"
    limit: int | None = 512
    max_new_tokens: int = 64
    samples: int = 2
    temperature: float = 1.0
    seed: int = 0
    batch_size: int = 256
    use_chat_template: bool = False  # the flag the policy was sampled and trained with (same prompt strings)
    output: str | None = None  # also write the metrics and the resolved config as JSON here


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run ``negrl eval``; returns ``PolicyEval.as_dict()``."""
    from negrl.evaluation import evaluate_policy
    from negrl.modeling import load_policy
    from negrl.problems import load_problems

    problems = load_problems(cfg.problems, split=cfg.split, limit=cfg.limit, **(cfg.problem_kwargs or {}))
    model, tokenizer = load_policy(cfg.policy)
    ev = evaluate_policy(problems, model, tokenizer, max_new_tokens=cfg.max_new_tokens, samples=cfg.samples,
                         temperature=cfg.temperature, seed=cfg.seed, batch_size=cfg.batch_size,
                         use_chat_template=cfg.use_chat_template).as_dict()
    if cfg.output:
        write_resolved_config(cfg.output, {"config": cfg, "metrics": ev})
    return ev


# ------------------------------------------------------------------------------------------------ commands


def cmd_sample(argv: Sequence[str]) -> None:
    a = config_parser("negrl sample", "Sample and verify rollouts of a policy.", config_required=False).parse_args(argv)
    print(json.dumps(sample(load_config(SampleConfig, a.config, a.set))))


def cmd_label(argv: Sequence[str]) -> None:
    from negrl.experiments.label_steps import LabelStepsConfig, run_label_steps

    a = config_parser("negrl label", "Label the steps of rollouts with one source.", config_required=False
                      ).parse_args(argv)
    cfg = load_config(LabelStepsConfig, a.config, a.set)
    labels = run_label_steps(cfg)
    firsts = Counter(str(lab.first_error) for lab in labels)
    print(f"{len(labels)} rollouts labelled by {cfg.source}; first-error histogram: {dict(sorted(firsts.items()))}")


def cmd_eval(argv: Sequence[str]) -> None:
    a = config_parser("negrl eval", "Held-out accuracy of a policy.", config_required=False).parse_args(argv)
    print(json.dumps(evaluate(load_config(EvaluateConfig, a.config, a.set))))


# Field flags the comparison recipes always had: each is exactly ``--set NAME=VALUE`` (parsed by the field's type).
PIPELINE_FLAGS = ("output_dir", "base_policy", "n_prompts", "threads", "seed")


def pipeline_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = config_parser(prog, description)
    for name in PIPELINE_FLAGS:
        parser.add_argument(f"--{name}", default=None, metavar="VALUE", help=f"the same as --set {name}=VALUE")
    return parser


def pipeline_config(a: argparse.Namespace, methods: Sequence[str] | None = None) -> Any:
    """``PipelineConfig`` from ``--config``, the field flags and ``--set`` (``methods`` replaces the config's)."""
    from negrl.experiments.pipeline import PipelineConfig

    sets = [*(f"{n}={getattr(a, n)}" for n in PIPELINE_FLAGS if getattr(a, n) is not None), *a.set]
    if methods:
        sets.append(f"methods={json.dumps(list(methods))}")
    return load_config(PipelineConfig, a.config, sets)


def cmd_compare(argv: Sequence[str]) -> dict[int, Any]:
    """Every method of a comparison config over seeds; writes ``results.md`` / ``results.json``."""
    from negrl.experiments.compare import results_table, run_seeds

    parser = pipeline_parser("negrl compare", "Train and evaluate every method of the config, over seeds.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run (a run option)")
    parser.add_argument("--methods", nargs="+", default=None, help="the same as --set methods=[...]")
    a = parser.parse_args(argv)
    cfg = pipeline_config(a, a.methods)
    runs = run_seeds(cfg, a.seeds)
    table = results_table(runs)
    out = Path(cfg.output_dir)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=2), encoding="utf-8")
    for seed, run in runs.items():
        print(f"seed {seed} data: {json.dumps(run['data'])}")
    print(table)
    return runs


def cmd_demo(argv: Sequence[str]) -> None:
    from negrl.experiments.demo import run_demo

    parser = argparse.ArgumentParser(prog="negrl demo", description="The whole pipeline on the embedded default.")
    parser.add_argument("--config", default="recipes/configs/demo/arithmetic.yaml", help="demo YAML")
    parser.add_argument("--fresh", action="store_true", help="delete the demo's output directory first")
    a = parser.parse_args(argv)
    start = time.perf_counter()
    print(run_demo(Path(a.config), fresh=a.fresh))
    print(f"\ndemo wall time: {time.perf_counter() - start:.0f} s")


def base_parser() -> Any:
    """TrlParser of ``negrl train base`` (``recipes/sft.py``): ``BasePolicyConfig`` + ``NegrlSFTConfig``."""
    from trl import TrlParser

    from negrl.experiments.base_policy import BasePolicyConfig
    from negrl.sft import NegrlSFTConfig

    return TrlParser((BasePolicyConfig, NegrlSFTConfig))


def _given_keys(argv: Sequence[str] | None) -> set[str]:
    """Keys set explicitly: those of the ``--config`` YAML and the ``--key`` flags of ``argv``."""
    from negrl.experiments.config import read_yaml

    args = list(sys.argv[1:] if argv is None else argv)
    keys = {a[2:].split("=", 1)[0].replace("-", "_") for a in args if a.startswith("--")}
    if "--config" in args and args.index("--config") + 1 < len(args):
        keys |= set(read_yaml(args[args.index("--config") + 1]))
    for a in args:
        if a.startswith("--config="):
            keys |= set(read_yaml(a.split("=", 1)[1]))
    return keys - {"config"}


def train_base(argv: Sequence[str] | None) -> dict[str, Any]:
    """``negrl train base``: the embedded base policy (TrlParser, ``base_parser``)."""
    from negrl.experiments.base_policy import base_sft_args, train_base_policy
    from negrl.sft import NegrlSFTConfig

    cfg, sft_args = base_parser().parse_args_and_config(args=argv)
    # Start from negrl's base-policy defaults; the training arguments the YAML or the command line sets win (also
    # where they equal TRL's own default: `num_train_epochs: 3` must not fall back to the base's 40).
    trl_fields = set(NegrlSFTConfig(output_dir=sft_args.output_dir).to_dict())
    given = _given_keys(argv)
    values = sft_args.to_dict()
    overrides = {k: values[k] for k in given if k in trl_fields and k != "output_dir"}
    metrics = train_base_policy(cfg, base_sft_args(sft_args.output_dir, **overrides))
    print(
        f"base policy {metrics['task']} ({metrics['parameters']:,} params, {metrics['train_seconds']:.0f} s): "
        f"held-out greedy {100 * metrics['held_out_greedy']:.1f}%, sampled {100 * metrics['held_out_sampled']:.1f}% "
        f"(n={metrics['held_out_n']}); train greedy {100 * metrics['train_greedy']:.1f}%"
    )
    return metrics


def bcpg_parser() -> Any:
    """TrlParser of ``negrl train bcpg_nsa`` / ``bcpg_rounds``: ``BCPGRunConfig`` + ``BCPGNSAConfig``."""
    from trl import TrlParser

    from negrl.experiments.bcpg import BCPGRunConfig
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig

    return TrlParser((BCPGRunConfig, BCPGNSAConfig))


def train_bcpg(argv: Sequence[str] | None, rounds: bool = False) -> Any:
    """``negrl train bcpg_nsa`` (one round) / ``bcpg_rounds`` (``cfg.rounds`` of them)."""
    import torch

    from negrl.experiments.bcpg import run_round, run_rounds

    cfg, args = bcpg_parser().parse_args_and_config(args=argv)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if rounds:
        history = run_rounds(cfg, args, Path(args.output_dir), seed=args.seed)
        for m in history:
            print(f"round {m['round']}: {m['rows']} rows, {m['negatives']} negatives, held-out {m['held_out']}")
        return history
    metrics = run_round(cfg, args, cfg.policy, Path(args.output_dir), seed=args.seed)
    print(f"BCPG-NSA (β={cfg.beta}, annotator={cfg.annotator}): {metrics['rows']} rows, "
          f"{metrics['negatives']} negatives; mining {metrics['mining']}; held-out {metrics['held_out']}")
    return metrics


def train_likra(argv: Sequence[str]) -> None:
    from negrl.experiments.likra_curve import load_experiment_config, train

    a = config_parser("negrl train likra", "Train the Likra heads (power-of-two checkpoints).").parse_args(argv)
    for head, paths in train(load_experiment_config(a.config, a.set)).items():
        print(f"{head}: {len(paths)} checkpoints, last {paths[-1] if paths else None}")


def train_methods(argv: Sequence[str], methods: Sequence[str] = (), prog: str = "negrl train") -> dict[str, Any]:
    """The comparison's data stages (cached) then each of ``methods`` (or ``--method``) trained and evaluated."""
    from negrl.experiments.compare import run_pipeline
    from negrl.experiments.methods import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"{prog}: unknown method(s) {unknown}; methods: {sorted(METHODS)} (and {sorted(TRAIN_COMMANDS)})")
    parser = pipeline_parser(prog, "Train comparison methods from the config's base policy.")
    parser.add_argument("--method", action="append", default=None, help="method(s) to train (repeatable)")
    a = parser.parse_args(argv)
    out = run_pipeline(pipeline_config(a, [*methods, *(a.method or [])]))
    if out["results"]:
        print(json.dumps(out, indent=2))
    return out


TRAIN_COMMANDS: dict[str, Callable[[Sequence[str]], Any]] = {
    "base": train_base,
    "bcpg_nsa": train_bcpg,
    "bcpg_rounds": lambda argv: train_bcpg(argv, rounds=True),
    "likra": train_likra,
}


def cmd_train(argv: Sequence[str]) -> None:
    if not argv or argv[0].startswith("-"):
        from negrl.experiments.methods import METHODS

        raise SystemExit(f"usage: negrl train METHOD --config FILE ...; METHOD is one of {sorted(TRAIN_COMMANDS)} "
                         f"or a comparison method {sorted(METHODS)}")
    method, rest = argv[0], list(argv[1:])
    if method in TRAIN_COMMANDS:
        TRAIN_COMMANDS[method](rest)
    else:
        train_methods(rest, [method], prog=f"negrl train {method}")


COMMANDS: dict[str, Callable[[Sequence[str]], Any]] = {
    "sample": cmd_sample,
    "label": cmd_label,
    "train": cmd_train,
    "compare": cmd_compare,
    "eval": cmd_eval,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> None:
    """The ``negrl`` console script (``[project.scripts]``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        first = (__doc__ or "").split("\n\n")[1]
        if argv and argv[0] not in ("-h", "--help"):
            raise SystemExit(f"negrl: unknown command {argv[0]!r}\n\n{first}")
        print(first)
        return
    COMMANDS[argv[0]](argv[1:])
