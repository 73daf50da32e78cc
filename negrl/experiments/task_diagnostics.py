"""Diagnostics of the second embedded tasks, on top of the shared pipeline (``negrl.experiments.pipeline``).

- Path-star (``negrl.tasks.path_star``): the Clever-Hans diagnostic of a policy — accuracy of the first step (the arm
  choice, chance ``1/D``) and of the later steps given a right first step — for the base, for every saved checkpoint
  of a base run (to pick a base above chance yet far from solved), and for every post-trained method.
- Multi-path arithmetic (``negrl.tasks.multipath``): how per-step advantages (Monte-Carlo values,
  ``StepLabels.advantages``) treat the *spurious* (valid-but-useless) steps inside *positive* rollouts, compared with
  the progress steps of the same rollouts (Setlur et al.: advantages expose spurious steps that RFT would imitate).

Used by ``recipes/star_experiment.py``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from negrl.generation import GenerationConfig, generate_texts
from negrl.records import Problem, Rollout, StepLabels, Verdict
from negrl.tasks import multipath, path_star


def first_step_eval(
    model: Any, tokenizer: Any, problems: Sequence[Problem], max_new_tokens: int = 24, samples: int = 1,
    seed: int = 0, batch_size: int = 256,
) -> dict[str, dict[str, float]]:
    """``path_star.first_step_stats`` of greedy and of sampled (T=1, ``samples`` draws) completions."""
    if any(p.domain != "path_star" for p in problems):
        raise ValueError("first_step_eval needs path_star problems")
    cfg = GenerationConfig(temperature=0.0, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
                           show_progress=False)
    greedy = [g.text for g in generate_texts([p.prompt for p in problems], model, tokenizer, cfg)]
    flat = [p for p in problems for _ in range(samples)]
    sampled_cfg = dataclasses.replace(cfg, temperature=1.0)
    sampled = [g.text for g in generate_texts([p.prompt for p in flat], model, tokenizer, sampled_cfg)]
    return {"greedy": path_star.first_step_stats(problems, greedy), "sampled": path_star.first_step_stats(flat, sampled)}


def checkpoint_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, dir)`` of the ``checkpoint-<step>`` directories of a training run, by step."""
    found = [(int(m[1]), d) for d in Path(run_dir).rglob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)",
                                                                                                 d.name))]
    return sorted(found)


def probe_checkpoints(
    run_dir: str | Path, problems: Sequence[Problem], max_new_tokens: int = 24, samples: int = 1,
    known: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The Clever-Hans trajectory of a base run: first-step stats of every saved checkpoint (and the final model).

    ``known``: rows of an earlier probe (``probe.json``); a checkpoint already probed on the same ``n`` problems,
    with the same weights file (modification time), is not probed again, so probing a run that is still training
    only costs the new checkpoints, and a run retrained into the same directory is probed afresh.
    """
    from negrl.modeling import load_policy
    from negrl.tokenizer import build_char_tokenizer

    def stamp(d: Path) -> float | None:
        weights = d / "model.safetensors"
        return weights.stat().st_mtime if weights.exists() else None

    done = {(r["step"], r["greedy"]["n"], r.get("weights_mtime")): r for r in known}
    rows = []
    dirs = checkpoint_dirs(run_dir)
    if (Path(run_dir) / "config.json").exists():
        dirs.append((10**9, Path(run_dir)))
    for step, d in dirs:
        name = step if step < 10**9 else "final"
        key = (name, float(len(problems)), stamp(d))
        if key[2] is not None and key in done:
            rows.append(done[key])
            continue
        model, _ = load_policy(d, device="cpu")
        stats = first_step_eval(model, build_char_tokenizer(), problems, max_new_tokens, samples)
        rows.append({"step": name, "dir": str(d), "weights_mtime": key[2], **stats})
    return rows


def plot_trajectory(rows: Sequence[dict[str, Any]], path: str | Path, picked: int | None = None) -> Path:
    """PNG of the Clever-Hans trajectory: first-step and later-given-first accuracy (greedy) vs training step."""
    from negrl.experiments.figures import new_figure, save_figure

    pts = sorted((r["step"], r["greedy"]) for r in rows if isinstance(r["step"], int))
    if not pts:
        raise ValueError("no checkpoint rows to plot")
    steps = [s for s, _ in pts]
    fig, ax = new_figure((6.4, 4.0))
    ax.plot(steps, [100 * g["first"] for _, g in pts], marker="o", label="first step (arm choice)")
    ax.plot(steps, [100 * g["later_given_first"] for _, g in pts], marker="s", label="later steps | right first step")
    ax.axhline(100 * pts[0][1]["chance"], color="gray", linestyle="--", label="chance (1/D)")
    if picked is not None:
        ax.axvline(picked, color="black", linestyle=":", label=f"base picked (step {picked})")
    ax.set_xlabel("SFT step (fresh gold graphs)")
    ax.set_ylabel("held-out greedy accuracy (%)")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def method_first_step_stats(
    model_dirs: dict[str, str], problems: Sequence[Problem], max_new_tokens: int = 24, samples: int = 1
) -> dict[str, dict[str, dict[str, float]]]:
    """``first_step_eval`` of each method's model directory (method → greedy / sampled stats)."""
    from negrl.modeling import load_policy

    out = {}
    for name, d in model_dirs.items():
        model, tokenizer = load_policy(d, device="cpu")
        out[name] = first_step_eval(model, tokenizer, problems, max_new_tokens, samples)
    return out


def _line_index(completion: str, start: int) -> int:
    return completion.count("\n", 0, start)


def spurious_step_advantages(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict],
    step_labels: Sequence[StepLabels],
) -> dict[str, Any]:
    """How Monte-Carlo per-step advantages treat spurious vs progress steps inside positive (correct) rollouts.

    Steps are matched to ``multipath.classify_steps`` kinds by their line. Returns, per kind (``progress``,
    ``spurious``, and ``wrong``: false steps inside a lucky positive): ``n``, ``mean_advantage``, ``frac_negative`` (advantage < 0) and ``frac_nonpositive`` (<= 0);
    and over positives that contain a spurious step: ``argmin_is_spurious`` (the lowest-advantage step, among
    progress and spurious steps, is a spurious one; ties count fractionally) against ``argmin_chance`` (the same
    if the lowest step were picked uniformly at random).
    """
    by_problem = {p.problem_id: p for p in problems}
    by_rollout = {r.rollout_id: r for r in rollouts}
    correct = {v.rollout_id: v.correct for v in verdicts}
    adv: dict[str, list[float]] = {"progress": [], "spurious": [], "wrong": []}
    hits = chance = 0.0
    n_with_spurious = n_positive = 0
    for sl in step_labels:
        if correct.get(sl.rollout_id) is not True:
            continue
        n_positive += 1
        r = by_rollout[sl.rollout_id]
        kinds = multipath.classify_steps(by_problem[r.problem_id], r.completion)
        scored = []
        for step, a in zip(sl.steps, sl.advantages):
            kind = kinds[_line_index(r.completion, step.start)]
            if kind in adv and a is not None:
                adv[kind].append(a)
                scored.append((a, kind))
        useful = [(a, k) for a, k in scored if k != "wrong"]
        if any(k == "spurious" for _, k in useful):
            n_with_spurious += 1
            low = min(a for a, _ in useful)
            lowest = [k for a, k in useful if a == low]
            hits += lowest.count("spurious") / len(lowest)
            chance += sum(k == "spurious" for _, k in useful) / len(useful)

    def summary(values: list[float]) -> dict[str, float]:
        n = len(values)
        return {"n": n, "mean_advantage": sum(values) / n if n else float("nan"),
                "frac_negative": sum(v < 0 for v in values) / n if n else float("nan"),
                "frac_nonpositive": sum(v <= 0 for v in values) / n if n else float("nan")}

    return {
        "positives_labelled": n_positive,
        "positives_with_spurious": n_with_spurious,
        "progress": summary(adv["progress"]),
        "spurious": summary(adv["spurious"]),
        "wrong": summary(adv["wrong"]),
        "argmin_is_spurious": hits / n_with_spurious if n_with_spurious else float("nan"),
        "argmin_chance": chance / n_with_spurious if n_with_spurious else float("nan"),
    }


def spurious_rate(problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict]) -> dict:
    """Fraction of positive / negative rollouts that contain at least one spurious step (exact classifier)."""
    by_problem = {p.problem_id: p for p in problems}
    correct = {v.rollout_id: v.correct for v in verdicts}
    counts = {True: [0, 0], False: [0, 0]}
    for r in rollouts:
        c = correct.get(r.rollout_id)
        if c is None:
            continue
        counts[c][0] += 1
        counts[c][1] += "spurious" in multipath.classify_steps(by_problem[r.problem_id], r.completion.rstrip("\n"))
    return {
        "positives": counts[True][0], "positives_with_spurious": counts[True][1],
        "negatives": counts[False][0], "negatives_with_spurious": counts[False][1],
    }


def export_checkpoint(run_dir: str | Path, step: int, out_dir: str | Path) -> Path:
    """Make a base-policy directory from ``checkpoint-<step>`` of a base run: its weights and tokenizer (no optimizer
    state) plus the run's ``problems/`` splits and ``config.yaml``, so the pipeline finds the held-out split."""
    import shutil

    run_dir, out = Path(run_dir), Path(out_dir)
    matches = [d for s, d in checkpoint_dirs(run_dir) if s == step]
    if not matches:
        raise FileNotFoundError(f"{run_dir}: no checkpoint-{step} (have {[s for s, _ in checkpoint_dirs(run_dir)]})")
    out.mkdir(parents=True, exist_ok=True)
    skip = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"}
    for f in matches[0].iterdir():
        if f.is_file() and f.name not in skip:
            shutil.copy2(f, out / f.name)
    for name in ("problems", "config.yaml"):
        src = run_dir / name
        if src.is_dir():
            shutil.copytree(src, out / name, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, out / name)
    (out / "exported_from.txt").write_text(f"{matches[0]}\n", encoding="utf-8")
    return out


def audit_step_credit(run_dir: Path) -> dict[str, Any]:
    """Audit of the per-step credit on path-star against the exact step checker, from one seed's stored stages.

    ``mc``: wrong rollouts whose Monte-Carlo critical step (``StepLabels.first_error``, one step per line) is the
    exact first wrong line, and how the disagreements fall (MC earlier / later / none). ``pairs`` (when the
    per-step DPO rows were built): rows whose chosen side verifies, whose rejected side is exactly the wrong rollout
    cut after its exact first wrong line, which carry EOS on that side iff it is the whole stopped completion (never
    on a truncated one), and whose ``critical_step`` is the exact one.
    """
    import json

    from negrl.io import read_stage

    problems = {p.problem_id: p for p in read_stage(run_dir / "problems", Problem)}
    rollouts = {r.rollout_id: r for r in read_stage(run_dir / "rollouts", Rollout)}
    mc = {"n": 0, "agree": 0, "mc_earlier": 0, "mc_later": 0, "mc_none": 0}
    for lab in read_stage(run_dir / "step_labels", StepLabels):
        r = rollouts[lab.rollout_id]
        exact = path_star.first_error(problems[r.problem_id], r.completion)
        if exact is None:
            continue
        mc["n"] += 1
        if lab.first_error is None:
            mc["mc_none"] += 1
        else:
            key = "agree" if lab.first_error == exact else "mc_earlier" if lab.first_error < exact else "mc_later"
            mc[key] += 1
    out: dict[str, Any] = {"mc": mc}
    rows_path = run_dir / "data" / "step_dpo.jsonl"
    if rows_path.exists():
        pairs = {"n": 0, "chosen_correct": 0, "rejected_cut_at_exact_error": 0, "eos_iff_whole_solution": 0,
                 "critical_step_exact": 0}
        for line in rows_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            problem, wrong = problems[row["problem_id"]], rollouts[row["rejected_id"]]
            exact = path_star.first_error(problem, wrong.completion)
            cut = "".join(wrong.completion.splitlines(keepends=True)[: (exact or 0) + 1])
            pairs["n"] += 1
            pairs["chosen_correct"] += bool(path_star.verify(problem, row["chosen"]).correct)
            pairs["rejected_cut_at_exact_error"] += exact is not None and row["rejected"] == cut
            # EOS belongs only on a rejected side that is the whole (stopped) completion, never on a truncated one
            whole = cut.rstrip() == wrong.completion.rstrip() and wrong.finish_reason == "stop"
            pairs["eos_iff_whole_solution"] += row["rejected_eos"] == whole
            pairs["critical_step_exact"] += row["critical_step"] == exact
        out["pairs"] = pairs
    return out


def experiment_diagnostics(cfg: Any, runs: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Task-specific diagnostics of a finished ``negrl.experiments.compare.run_seeds``: per seed, path-star first-step stats of
    every method, or multi-path spurious-step statistics of the rollouts and their Monte-Carlo advantages."""
    from negrl.experiments.pipeline import split_problems
    from negrl.io import read_stage

    out: dict[int, dict[str, Any]] = {}
    for seed, run in runs.items():
        run_dir = Path(cfg.output_dir) / f"seed{seed}"
        if cfg.task == "path_star":
            _, test = split_problems(dataclasses.replace(cfg, seed=seed))
            results = run.get("results") or stored_results(run_dir)
            dirs = {m: r["model_dir"] for m, r in results.items()}
            out[seed] = {"first_step": method_first_step_stats(dirs, test, cfg.max_new_tokens, cfg.eval_samples),
                         "audit": audit_step_credit(run_dir)}
        elif cfg.task == "multipath":
            problems = read_stage(run_dir / "problems", Problem)
            rollouts = read_stage(run_dir / "rollouts", Rollout)
            verdicts = read_stage(run_dir / "verdicts", Verdict)
            labels = positive_step_labels(cfg, run_dir, problems, rollouts, verdicts)
            out[seed] = {"spurious_rate": spurious_rate(problems, rollouts, verdicts),
                         "advantages": spurious_step_advantages(problems, rollouts, verdicts, labels)}
    return out


def stored_results(run_dir: Path, methods: Sequence[str] = ()) -> dict[str, Any]:
    """The pipeline's cached evaluations of one seed (``run_dir/eval/<method>.json``), method → result, in the
    order of ``methods`` (the config's), then any other stored method alphabetically."""
    import json

    found = {f.stem: f for f in sorted((run_dir / "eval").glob("*.json"))}
    order = [m for m in methods if m in found] + [m for m in found if m not in methods]
    return {m: json.loads(found[m].read_text(encoding="utf-8")) for m in order}


def positive_step_labels(
    cfg: Any, run_dir: Path, problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict]
) -> list[StepLabels]:
    """Monte-Carlo values of every step of the *positive* rollouts (the pipeline labels only negatives), with the
    pipeline's K, the plain success-rate estimator (``mean``: advantages of a positive are not all 0) and no early
    stop; cached as the stage ``run_dir/positive_step_labels``."""
    from negrl.modeling import load_policy
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo

    correct = {v.rollout_id for v in verdicts if v.correct is True}
    positives = [r for r in rollouts if r.rollout_id in correct]
    model, tokenizer = load_policy(cfg.base_policy)
    mc = MonteCarloConfig(k=int(cfg.mc.get("k", 8)), estimator="mean", only_incorrect=False, early_stop=False,
                          seed=cfg.seed, max_new_tokens=cfg.max_new_tokens, show_progress=cfg.show_progress)
    return label_monte_carlo(problems, positives, verdicts, model, tokenizer, mc, out_dir=run_dir / "positive_step_labels")


def first_step_table(diag: dict[int, dict[str, Any]]) -> str:
    """Markdown: per method, mean over seeds of greedy first-step accuracy and later|first (path-star)."""
    methods: list[str] = []
    for d in diag.values():
        methods += [m for m in d.get("first_step", {}) if m not in methods]
    lines = ["| method | greedy acc % | first step % | later given first % | sampled first % | sampled later|first % |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m in methods:
        rows = [d["first_step"][m] for d in diag.values() if m in d.get("first_step", {})]

        def mean(mode: str, key: str, rows: list[dict[str, Any]] = rows) -> str:
            vals = [r[mode][key] for r in rows if r[mode][key] == r[mode][key]]
            return f"{100 * sum(vals) / len(vals):.1f}" if vals else "-"

        lines.append(f"| {m} | {mean('greedy', 'acc')} | {mean('greedy', 'first')} | "
                     f"{mean('greedy', 'later_given_first')} | {mean('sampled', 'first')} | "
                     f"{mean('sampled', 'later_given_first')} |")
    return "\n".join(lines)


def warm_start_base(init_dir: str | Path, cfg: Any, args: Any) -> dict[str, Any]:
    """``negrl.experiments.base_policy.train_base_policy``, but starting from a trained tiny policy (``init_dir``) instead of a
    random initialisation.

    Why: on 2 shared CPU cores a from-scratch tiny model needs thousands of steps to learn to copy digits from the
    prompt (the induction plateau); a policy that already copies (e.g. the multi-path arithmetic base, same char
    tokenizer) learns the path-star format, and its Clever-Hans shortcut, within a few hundred steps.
    ``cfg``: ``BasePolicyConfig`` (task, splits, eval); ``args``: ``SFTConfig``. Writes what ``train_base_policy``
    writes, plus ``init_from`` in ``metrics.json``.
    """
    import json
    import time

    import torch

    from negrl.evaluation import evaluate_policy
    from negrl.experiments.config import write_resolved_config
    from negrl.io import write_stage
    from negrl.modeling import count_parameters, load_policy, save_policy
    from negrl.sft import gold_dataset, train_sft
    from negrl.tasks import get_task

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_resolved_config(out / "config.yaml", {"init_from": str(init_dir), "base_policy": cfg, "sft": args})
    task = get_task(cfg.task, **cfg.task_kwargs)
    train, test = task.make_splits(cfg.n_train, cfg.n_test, seed=cfg.problem_seed)
    for name, split in (("train", train), ("test", test)):
        write_stage(out / "problems" / name, split, Problem, config={"task": task.config.name, "seed": cfg.problem_seed})
    model, tokenizer = load_policy(init_dir, device="cpu" if args.use_cpu else None)
    model.train()
    start = time.perf_counter()
    train_sft(model, tokenizer, gold_dataset(train), args)
    seconds = time.perf_counter() - start
    save_policy(model, tokenizer, out)
    held_out = evaluate_policy(test, model, tokenizer, max_new_tokens=cfg.max_new_tokens, samples=cfg.eval_samples)
    metrics = {"task": task.config.name, "init_from": str(init_dir), "parameters": count_parameters(model),
               "train_seconds": round(seconds, 1), "held_out_greedy": held_out.greedy.value,
               "held_out_sampled": held_out.sampled.value, "held_out_n": held_out.greedy.total}
    if cfg.task == "path_star":
        metrics["first_step"] = first_step_eval(model, tokenizer, test, cfg.max_new_tokens, cfg.eval_samples)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics
