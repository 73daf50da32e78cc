"""The end-to-end demo: base policy → the shared pipeline (``negrl.experiments.pipeline``) → one comparison table.

A demo YAML has these keys (each section but ``base`` optional):

    output_dir:   runs/demo/arithmetic
    base:         BasePolicyConfig fields + SFT overrides (learning_rate, num_train_epochs, ...)
    rounds:       RoundsConfig fields (negrl.experiments.rounds: pool_size, rounds, seeds, arms, ...): iterated
                  on-policy rounds, every arm against the best positives-only arm, paired by seed
    pipeline:     PipelineConfig fields (n_prompts, samples_per_prompt, mc, methods, method_options, ...): one
                  offline round on fresh prompts
    likra_rerank: RerankConfig fields (k, n_train, n_test, heads, ws)

Every stage is cached under ``output_dir`` (``base/``, ``rounds/``, ``pipeline/``, ``likra_rerank/``): a rerun
reuses what is on disk.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from negrl.experiments.base_policy import BasePolicyConfig, base_sft_args, train_base_policy
from negrl.experiments.compare import run_pipeline
from negrl.experiments.config import read_yaml
from negrl.experiments.pipeline import PipelineConfig


def load_demo_config(path: Path) -> dict[str, Any]:
    cfg = read_yaml(path)
    unknown = set(cfg) - {"output_dir", "base", "rounds", "pipeline", "likra_rerank"}
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; expected output_dir, base, rounds, pipeline, "
            "likra_rerank"
        )
    if "output_dir" not in cfg:
        raise ValueError(f"{path}: missing 'output_dir'")
    return cfg


def ensure_base_policy(base: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train the base policy into ``out`` unless a finished one (``metrics.json``) is there; return its metrics."""
    metrics_path = out / "metrics.json"
    if metrics_path.exists():
        return json.loads(metrics_path.read_text(encoding="utf-8"))
    names = {f.name for f in dataclasses.fields(BasePolicyConfig)}
    cfg = BasePolicyConfig(**{k: v for k, v in base.items() if k in names})
    args = base_sft_args(str(out), **{"disable_tqdm": False, **{k: v for k, v in base.items() if k not in names}})
    print(f"[demo] training the base policy into {out} ...", flush=True)
    return train_base_policy(cfg, args)


def run_likra_rerank(spec: dict[str, Any], base_dir: Path, task: str, task_kwargs: dict[str, Any], out: Path) -> list:
    """Likra as a reranker of the base policy's samples (cached in ``out/rerank.json``)."""
    from negrl.experiments.likra_rerank import RerankConfig, run_rerank

    cache = out / "rerank.json"
    if cache.exists():
        return json.loads(cache.read_text(encoding="utf-8"))
    cfg = RerankConfig.from_dict(
        {"task": task, "task_kwargs": task_kwargs, **spec, "base_policy": str(base_dir), "output_dir": str(out)}
    )
    print(f"[demo] Likra reranker: heads on verified samples of {cfg.n_train} prompts, k={cfg.k} ...", flush=True)
    rows = run_rerank(cfg)
    cache.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


def format_rerank(rows: list[dict[str, Any]]) -> str:
    counts = next((r for r in rows if r["method"] == "counts"), {})
    lines = [
        f"Likra as a reranker: pick 1 of k samples of the base policy per held-out problem "
        f"({counts.get('test_problems', '?')} problems; heads trained on {counts.get('train_pos', '?')} verified "
        f"positives / {counts.get('train_neg', '?')} negatives)",
        "",
        "| selection rule | w | length-normalised | accuracy % |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        if r["method"] == "counts" or r["method"] == "random_draw":
            continue
        w = r.get("w", "-") if r["method"] in ("likra", "base_likra") else "-"
        norm = {True: "yes", False: "no"}.get(r.get("norm"), "-")
        lines.append(f"| {r['method']} | {w} | {norm} | {100 * r['acc']:.1f} |")
    return "\n".join(lines)


def format_report(base_metrics: dict[str, Any], result: dict[str, Any]) -> str:
    data = result["data"]
    lines = [
        f"base policy: {base_metrics['task']}, {base_metrics['parameters']:,} parameters, "
        f"trained {base_metrics['train_seconds']:.0f} s on {base_metrics.get('n_train', 'limited')} gold problems",
        "post-training data: " + ", ".join(f"{k} {v}" for k, v in data.items() if not isinstance(v, dict)),
        "",
        "| method | held-out greedy % | held-out sampled % | training rows |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in result["results"].items():
        if "skipped" in r:  # the data gave this method nothing to train on (negrl.experiments.methods.MethodSkipped)
            lines.append(f"| {name} | skipped: {r['skipped']} | - | {r['build'].get('kept', 0)} |")
            continue
        rows = r.get("train", {}).get("rows", "-")
        lines.append(f"| {name} | {100 * r['greedy']:.1f} | {100 * r['sampled']:.1f} | {rows} |")
    n = next(iter(result["results"].values()), {}).get("n", 0)
    if n:
        lines.append(f"\n(n = {n} held-out problems; one standard error ≈ ±{100 * 0.5 / n ** 0.5:.1f} points near 50 %)")
    return "\n".join(lines)


def format_rounds(runs: dict[int, Any], cfg: Any, png: Path) -> str:
    """The rounds table, then one line per arm: its paired difference against the best positives-only arm."""
    from negrl.experiments.rounds import best_positive_arm, paired_arm_differences, results_table

    ref = best_positive_arm(runs, cfg)
    lines = [f"Iterated on-policy rounds: {cfg.rounds} rounds on a fixed pool of {cfg.pool_size} prompts "
             f"({cfg.task} {cfg.task_kwargs}), seeds {cfg.seeds}", "", results_table(runs, cfg), ""]
    for name, diff in paired_arm_differences(runs, cfg).items():
        verdict = ("beats it" if diff.lo > 0 else "is worse" if diff.hi < 0 else "is not distinguishable from it") \
            if diff.n >= 2 else "(one seed: no interval)"
        lines.append(f"  {name} − {ref}: {diff.format()} points held-out greedy (95 % CI over {diff.n} seeds): "
                     f"{verdict}")
    lines.append("\nAbsolute accuracies move with the base (its training seed and the machine); the paired "
                 "differences above, same base and pool per seed, are what carries over.")
    lines.append(f"figure: {png}")
    return "\n".join(lines)


def run_demo_rounds(spec: dict[str, Any], base_dir: Path, base: dict[str, Any], out: Path) -> str:
    """The rounds section: its config over the base's task (the section may name a harder preset of it)."""
    from negrl.experiments.rounds import RoundsConfig, plot_rounds, run_rounds

    task = {"task": base.get("task", "arithmetic"), "task_kwargs": base.get("task_kwargs", {})}
    cfg = RoundsConfig.from_dict({**task, **spec, "base_policy": str(base_dir), "output_dir": str(out)},
                                 where="rounds")
    runs = run_rounds(cfg)
    return format_rounds(runs, cfg, plot_rounds(runs, cfg, out / "rounds.png"))


def quiet_libraries() -> None:
    """Keep the demo's console to negrl's own progress bars: no per-map bars from datasets, no library warnings."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def run_demo(config_path: Path, fresh: bool = False) -> str:
    """Run (or resume) the demo described by ``config_path`` and return the report as Markdown."""
    quiet_libraries()
    cfg = load_demo_config(config_path)
    out = Path(cfg["output_dir"])
    if fresh and out.exists():
        shutil.rmtree(out)
    base_metrics = ensure_base_policy(cfg.get("base", {}), out / "base")
    base = cfg.get("base", {})
    # The pipeline inherits the base's task and held-out split size unless the YAML says otherwise.
    task = {"task": base.get("task", "arithmetic"), "task_kwargs": base.get("task_kwargs", {})}
    if "n_test" in base:
        task["n_test"] = base["n_test"]
    report = (f"base policy: {base_metrics['task']}, {base_metrics['parameters']:,} parameters, held-out "
              f"{100 * base_metrics['held_out_greedy']:.1f} % greedy / {100 * base_metrics['held_out_sampled']:.1f} % "
              f"sampled on its own split")
    if cfg.get("rounds") is not None:
        report += "\n\n" + run_demo_rounds(cfg["rounds"], out / "base", base, out / "rounds")
    if cfg.get("pipeline") is not None:
        pipeline = PipelineConfig.from_dict(
            {**task, **cfg["pipeline"], "base_policy": str(out / "base"), "output_dir": str(out / "pipeline")},
            where=str(config_path),
        )
        report += "\n\nOne offline round on fresh prompts:\n" + format_report(base_metrics, run_pipeline(pipeline))
    if cfg.get("likra_rerank") is not None:
        rows = run_likra_rerank(cfg["likra_rerank"], out / "base", task["task"], task["task_kwargs"],
                                out / "likra_rerank")
        report += "\n\n" + format_rerank(rows)
    return report
