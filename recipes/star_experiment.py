"""Negatives on the second embedded tasks: path-star graphs (critical first step) and multi-path arithmetic.

Commands:

    # 1. the path-star base: SFT on fresh gold graphs (D=2, L=2, ids 10..99), a checkpoint every 250 steps; the
    #    break-out is over by ~3,000 steps (~26 min on one CPU thread), where the run can be stopped
    python recipes/sft.py --config recipes/configs/base/path_star.yaml --output_dir runs/star_base_run
    #    (or warm-started from a tiny policy that already copies digits: --warm_start INIT_DIR --base_config ...)
    # 2. its Clever-Hans trajectory (first-step accuracy vs later|first per checkpoint; trajectory.png); pick a step
    #    in the break-out (first step clearly above chance, far from solved) and export it as the base
    python recipes/star_experiment.py --probe_checkpoints runs/star_base_run --step 1750
    python recipes/star_experiment.py --export runs/star_base_run --step 1750 --to runs/base/path_star
    # 3. the methods on path-star: base / RFT / outcome DPO / per-step DPO / AWR (+ BCPG-NSA, Likra if registered)
    python recipes/star_experiment.py --config recipes/configs/star/path_star.yaml --seeds 0 1 2

    # multi-path arithmetic: base, then RFT vs per-step methods, and how often MC advantages flag spurious steps
    python recipes/sft.py --config recipes/configs/base/multipath.yaml
    python recipes/star_experiment.py --config recipes/configs/star/multipath.yaml --seeds 0 1 2

Writes ``results.md`` / ``results.json`` (the pipeline's accuracy table) and ``diagnostics.md`` /
``diagnostics.json`` (first-step table or spurious-step statistics) to the config's ``output_dir``, and prints them.
Logic: ``negrl.experiments.pipeline`` and ``negrl.experiments.task_diagnostics``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from negrl.experiments.compare import results_table, run_seeds
from negrl.experiments.pipeline import load_pipeline_config
from negrl.experiments.task_diagnostics import (
    experiment_diagnostics,
    export_checkpoint,
    first_step_table,
    plot_trajectory,
    probe_checkpoints,
    stored_results,
)
from negrl.io import read_stage
from negrl.records import Problem


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML of negrl.experiments.pipeline.PipelineConfig fields (task: path_star | multipath)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help="override the config's method list")
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--base_policy", default=None)
    parser.add_argument("--n_prompts", type=int, default=None)
    parser.add_argument("--probe_checkpoints", metavar="RUN_DIR", help="first-step stats of each checkpoint of a run")
    parser.add_argument("--n_probe", type=int, default=256, help="held-out problems per checkpoint probe")
    parser.add_argument("--export", metavar="RUN_DIR", help="export checkpoint --step of RUN_DIR as a base (--to)")
    parser.add_argument("--step", type=int, help="with --export: the checkpoint; with --probe_checkpoints: marked")
    parser.add_argument("--to")
    parser.add_argument("--warm_start", metavar="INIT_DIR", help="train the base of --base_config from this policy")
    parser.add_argument("--base_config", help="YAML of recipes/sft.py (BasePolicyConfig + SFTConfig fields)")
    parser.add_argument("--diagnostics_only", action="store_true",
                        help="skip the pipeline: diagnostics (and the table) from the stored stages of --seeds")
    return parser


def warm_start(init_dir: str, base_config: str, output_dir: str | None) -> None:
    import dataclasses

    from negrl.experiments.base_policy import BasePolicyConfig, base_sft_args
    from negrl.experiments.config import read_yaml
    from negrl.experiments.task_diagnostics import warm_start_base

    d = read_yaml(base_config)
    own = {f.name for f in dataclasses.fields(BasePolicyConfig)}
    cfg = BasePolicyConfig(**{k: v for k, v in d.items() if k in own})
    sft = {k: v for k, v in d.items() if k not in own}  # SFTConfig fields (an unknown one fails in SFTConfig)
    out = output_dir or sft.pop("output_dir", "runs/base/path_star")
    sft.pop("output_dir", None)
    metrics = warm_start_base(init_dir, cfg, base_sft_args(out, **sft))
    print(json.dumps(metrics, indent=2))


def probe(run_dir: str, n: int, picked: int | None = None) -> None:
    test = read_stage(Path(run_dir) / "problems" / "test", Problem)[:n]
    cache = Path(run_dir) / "probe.json"
    known = json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else []
    rows = probe_checkpoints(run_dir, test, known=known)
    cache.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    plot = plot_trajectory(rows, Path(run_dir) / "trajectory.png", picked=picked)
    print(f"| step | greedy acc % | first % (chance {100 * rows[0]['greedy']['chance']:.0f}) | later given first % "
          f"| sampled acc % | sampled first % |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        g, s = r["greedy"], r["sampled"]
        print(f"| {r['step']} | {100 * g['acc']:.1f} | {100 * g['first']:.1f} | {100 * g['later_given_first']:.1f} "
              f"| {100 * s['acc']:.1f} | {100 * s['first']:.1f} |")
    print(f"plot: {plot}")


def main() -> None:
    a = make_parser().parse_args()
    if a.probe_checkpoints:
        return probe(a.probe_checkpoints, a.n_probe, picked=a.step)
    if a.warm_start:
        return warm_start(a.warm_start, a.base_config, a.output_dir)
    if a.export:
        if a.step is None or not a.to:
            raise SystemExit("--export needs --step and --to")
        print(export_checkpoint(a.export, a.step, a.to))
        return None
    if not a.config:
        raise SystemExit("give --config (or --probe_checkpoints / --export)")
    cfg = load_pipeline_config(a.config, methods=a.methods, output_dir=a.output_dir, base_policy=a.base_policy,
                               n_prompts=a.n_prompts)
    if a.diagnostics_only:
        runs = {s: {"data": {}, "results": stored_results(Path(cfg.output_dir) / f"seed{s}", cfg.methods)}
                for s in a.seeds}
    else:
        runs = run_seeds(cfg, a.seeds)
    out = Path(cfg.output_dir)
    table = results_table(runs)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=2), encoding="utf-8")
    diag = experiment_diagnostics(cfg, runs)
    (out / "diagnostics.json").write_text(json.dumps({str(k): v for k, v in diag.items()}, indent=2), encoding="utf-8")
    for seed, run in runs.items():
        print(f"seed {seed} data: {json.dumps(run['data'])}")
    print(table)
    if cfg.task == "path_star":
        ftable = first_step_table(diag)
        audits = "\n".join(f"seed {seed} audit vs the exact step checker: {json.dumps(d['audit'])}"
                            for seed, d in diag.items())
        (out / "diagnostics.md").write_text(ftable + "\n\n" + audits + "\n", encoding="utf-8")
        print(ftable)
        print(audits)
    else:
        for seed, d in diag.items():
            print(f"seed {seed}: {json.dumps(d)}")
    return None


if __name__ == "__main__":
    main()
