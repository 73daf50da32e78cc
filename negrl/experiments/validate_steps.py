"""Validate step labels against ground truth: first-error detection by MC, PRM, judge and consensus vs the checker.

On an embedded task (exact per-step checker), for rollouts of a policy on held-out problems:

1. the *oracle* labels (``OracleJudge``: ``negrl.tasks.check_steps``) are the truth;
2. Monte-Carlo labels (``label_monte_carlo`` with the policy as rollout policy);
3. a PRM: the policy's weights + LoRA, trained on Monte-Carlo labels of rollouts of *other* (training) problems,
   thresholded at λ (or a saved PRM, ``prm_model``);
4. an LLM judge (``LLMJudge``): the policy itself (a tiny char model cannot follow a judging prompt — its rows show
   what an unusable judge gives: ``None`` labels, never negatives), ``"smollm2"``, or any model directory;
5. consensus of pairs (``and`` by default, BCPG-NSA) and the majority vote of all three.

``run_validation`` returns the metrics (``first_error_metrics`` per source, over all verifiable rollouts and over the
wrong ones only, plus pairwise agreement) and writes the labels of every source as stages, ``metrics.json`` and
``table.md`` under ``output_dir``. ``recipes/validate_steps.py`` is the command line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.experiments.config import write_resolved_config
from negrl.io import write_stage
from negrl.records import StepLabels


@dataclass
class ValidateStepsConfig:
    """What to validate on and how each source is built (see the module docstring)."""

    policy: str = "runs/base/arithmetic"
    task: str = "arithmetic"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    n_problems: int = 64
    samples: int = 4
    max_new_tokens: int = 64
    seed: int = 0
    mc: dict[str, Any] = field(default_factory=lambda: {"k": 5})
    prm_problems: int = 128
    prm_samples: int = 4
    prm_steps: int = 200
    prm_learning_rate: float = 5e-3
    prm_lora_r: int = 16
    prm_soft_labels: bool = False
    prm_threshold: float = 0.5
    prm_model: str | None = None
    judge: str | None = "self"
    judge_limit: int | None = None
    judge_max_new_tokens: int = 64
    judge_batch_size: int = 16
    consensus_rule: str = "and"
    consensus_pairs: list[list[str]] = field(
        default_factory=lambda: [["mc", "judge"], ["prm", "judge"], ["mc", "prm"]]
    )
    output_dir: str = "runs/steps/validate"
    threads: int = 0


def _rollouts(problems, model, tok, samples: int, cfg: ValidateStepsConfig, seed: int):
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.verifiers import verify_rollouts

    gen = GenerationConfig(num_samples=samples, max_new_tokens=cfg.max_new_tokens, seed=seed, show_progress=False)
    rollouts = generate_rollouts(problems, model, tok, gen)
    verdicts = verify_rollouts(problems, rollouts)
    keep = [i for i, v in enumerate(verdicts) if v.correct is not None]
    return [rollouts[i] for i in keep], [verdicts[i] for i in keep]


def _train_prm(cfg: ValidateStepsConfig, task, model, tok, mc_cfg, out: Path):
    """PRM = policy weights + LoRA, trained on MC labels of rollouts of training problems."""
    import copy

    from negrl.steps.monte_carlo import label_monte_carlo
    from negrl.steps.prm import fit_prm

    train_problems = task.generate_problems(cfg.prm_problems, seed=cfg.seed)
    rollouts, verdicts = _rollouts(train_problems, model, tok, cfg.prm_samples, cfg, seed=cfg.seed + 1)
    mc_all = dataclasses.replace(mc_cfg, only_incorrect=False, seed=mc_cfg.seed + 1)
    labels = label_monte_carlo(train_problems, rollouts, verdicts, model, tok, mc_all, out_dir=out / "prm_train_mc")
    return fit_prm(copy.deepcopy(model), tok, train_problems, labels, out / "prm_trainer", steps=cfg.prm_steps,
                   learning_rate=cfg.prm_learning_rate, lora_r=cfg.prm_lora_r, seed=cfg.seed,
                   threshold=cfg.prm_threshold, soft=cfg.prm_soft_labels, save_to=out / "prm")


def _judge(cfg: ValidateStepsConfig, model, tok):
    from negrl.modeling import load_policy
    from negrl.steps.judge import LLMJudge

    if cfg.judge == "self":
        jm, jt = model, tok
    else:
        jm, jt = load_policy(cfg.judge, device=str(model.device))
    return LLMJudge(jm, jt, max_new_tokens=cfg.judge_max_new_tokens, batch_size=cfg.judge_batch_size)


def _table(metrics: dict[str, dict[str, Any]], title: str) -> str:
    cols = ["rollouts", "precision", "recall", "accuracy", "coverage", "step_accuracy"]
    lines = [f"### {title}", "", "| source | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        cells = [str(m[c]) if isinstance(m[c], int) or m[c] is None else f"{m[c]:.3f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_validation(cfg: ValidateStepsConfig) -> dict[str, Any]:
    """Label held-out rollouts with every source, score them against the oracle, write and return the metrics."""
    import torch

    from negrl.modeling import load_policy
    from negrl.steps.consensus import agreement_table, combine_labels, first_error_metrics
    from negrl.steps.judge import OracleJudge
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo
    from negrl.tasks import get_task

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_resolved_config(out / "config.json", cfg)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    model, tok = load_policy(cfg.policy)
    task = get_task(cfg.task, **cfg.task_kwargs)
    problems = task.generate_problems(cfg.n_problems, seed=20_000 + cfg.seed, exclude=set())
    rollouts, verdicts = _rollouts(problems, model, tok, cfg.samples, cfg, seed=cfg.seed)
    mc_cfg = MonteCarloConfig(**{"seed": cfg.seed, "max_new_tokens": cfg.max_new_tokens, "show_progress": False,
                                 **cfg.mc, "only_incorrect": False})
    sources: dict[str, list[StepLabels]] = {"oracle": OracleJudge().label(problems, rollouts)}
    timings["rollouts"] = time.perf_counter() - t
    t = time.perf_counter()
    sources["mc"] = label_monte_carlo(problems, rollouts, verdicts, model, tok, mc_cfg, out_dir=out / "mc_eval")
    timings["mc"] = time.perf_counter() - t
    t = time.perf_counter()
    if cfg.prm_model:  # reuse a PRM saved by PRMScorer.save_pretrained (e.g. by an earlier validation run)
        from negrl.steps.prm import PRMScorer

        scorer, n_prm_rows = PRMScorer.from_pretrained(cfg.prm_model, threshold=cfg.prm_threshold), 0
    else:
        scorer, n_prm_rows = _train_prm(cfg, task, model, tok, mc_cfg, out)
    sources["prm"] = scorer.label(problems, rollouts)
    timings["prm"] = time.perf_counter() - t
    if cfg.judge:
        t = time.perf_counter()
        judged = rollouts[: cfg.judge_limit] if cfg.judge_limit else rollouts
        sources["judge"] = _judge(cfg, model, tok).label(problems, judged)
        timings["judge"] = time.perf_counter() - t
    for a, b in cfg.consensus_pairs:
        if a in sources and b in sources:
            sources[f"{a}&{b}"] = combine_labels({a: sources[a], b: sources[b]}, cfg.consensus_rule)
    voters = [s for s in ("mc", "prm", "judge") if s in sources]
    if len(voters) == 3:
        sources["vote(mc,prm,judge)"] = combine_labels({s: sources[s] for s in voters}, "vote")
    return _report(cfg, out, sources, verdicts, timings, n_prm_rows, first_error_metrics, agreement_table)


def _report(cfg, out, sources, verdicts, timings, n_prm_rows, first_error_metrics, agreement_table) -> dict[str, Any]:
    truth = sources["oracle"]
    wrong_ids = {v.rollout_id for v in verdicts if v.correct is False}
    judged_ids = {lab.rollout_id for lab in sources.get("judge", truth)}
    metrics_all, metrics_wrong = {}, {}
    for name, labs in sources.items():
        if name == "oracle":
            continue
        ids = {lab.rollout_id for lab in labs}
        scope = [x for x in truth if x.rollout_id in ids] if "judge" in name else truth
        metrics_all[name] = first_error_metrics(labs, scope)
        metrics_wrong[name] = first_error_metrics(labs, [x for x in scope if x.rollout_id in wrong_ids])
    for name, labs in sources.items():
        write_stage(out / "labels" / name.replace("&", "_and_"), labs, StepLabels, config={"source": name})
    with_judge = {k: [x for x in v if x.rollout_id in judged_ids] for k, v in sources.items()}
    agree = agreement_table({k: with_judge[k] for k in ("oracle", "mc", "prm", "judge") if k in with_judge})
    truth_first = [x.first_error for x in truth]
    summary = {
        "rollouts": len(truth), "wrong_rollouts": len(wrong_ids), "prm_train_rows": n_prm_rows,
        "oracle_first_error_histogram": {str(k): truth_first.count(k) for k in sorted(set(truth_first), key=str)},
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    result = {"summary": summary, "all": metrics_all, "wrong_only": metrics_wrong, "agreement": agree}
    (out / "metrics.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    table = "\n\n".join([
        _table(metrics_all, f"First wrong step vs the exact checker: all {len(truth)} verifiable rollouts"),
        _table(metrics_wrong, f"Wrong rollouts only ({len(wrong_ids)})"),
    ])
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    result["table"] = table
    return result
