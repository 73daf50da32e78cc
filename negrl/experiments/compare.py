"""Comparing methods on the shared data: train each registered method (or reuse it), evaluate it, tabulate seeds.

``run_pipeline(cfg)`` runs the data stages (``negrl.experiments.pipeline``) and then every method of ``cfg.methods``
(``negrl.experiments.methods.METHODS``); ``run_variants`` trains named variants of methods (other options) on the
same data; ``results_table`` is the markdown table over seeds. A method the data cannot feed (``MethodSkipped``: no
correct sample, no pair, no non-zero advantage) gets a ``skipped: <reason>`` row with its build counts, and the
comparison goes on; the ``preflight`` of the data is printed before any training.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from negrl.evaluation import PolicyEval, evaluate_policy
from negrl.experiments.config import write_resolved_config as write_config_file
from negrl.experiments.methods import METHODS, MethodSkipped, jsonable, preflight
from negrl.experiments.pipeline import (
    MethodContext,
    PipelineConfig,
    PipelineData,
    data_summary,
    prepare_data,
    write_resolved_config,
)
from negrl.io import StageError
from negrl.modeling import check_local_model_path
from negrl.processes import process_state
from negrl.records import Problem


# ---------------------------------------------------------------------------------------------------------------
# Running methods and evaluating them
# ---------------------------------------------------------------------------------------------------------------


def run_method(cfg: PipelineConfig, name: str, data: PipelineData) -> str:
    """Train method ``name`` (or reuse its finished model directory) and return the model directory.

    Raises ``MethodSkipped`` when the data gives the method nothing to train on (no model is written).
    """
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
        if stored is not None and stored != jsonable(options):
            raise StageError(f"{out} was trained with method options {stored}, not {jsonable(options)}: "
                             "delete it or use another output_dir")
        return str(out)
    ctx = MethodContext(config=cfg, data=data, options=options, output_dir=out, seed=cfg.seed)
    return METHODS[name](ctx)


def scored_completions(ev: PolicyEval) -> list[dict[str, Any]]:
    """One row per scored completion of an evaluation (greedy ones at temperature 0, then the sampled ones)."""
    rows = []
    for r, v in zip(ev.rollouts, ev.verdicts, strict=True):
        if r.rollout_id != v.rollout_id:  # verify_rollouts keeps the order; a mismatch would mislabel the audit
            raise ValueError(f"evaluation verdict {v.rollout_id!r} is not for rollout {r.rollout_id!r}")
        rows.append({"problem_id": r.problem_id, "sample_index": r.sample_index, "temperature": r.temperature,
                     "completion": r.completion, "correct": v.correct, "extracted": v.extracted})
    return rows


def evaluate_method(cfg: PipelineConfig, name: str, model_dir: str, test: list[Problem]) -> dict[str, Any]:
    """Greedy and sampled held-out accuracy of ``model_dir`` (cached in ``eval/<name>.json``; main process).

    The file also keeps every scored completion with its verdict (``completions``, see ``scored_completions``) so
    a score can be audited; the returned result leaves them out (a result table does not carry them).
    """
    from negrl.modeling import load_policy

    path = cfg.run_dir / "eval" / f"{name}.json"
    settings = {"temperature": cfg.temperature, "use_chat_template": cfg.use_chat_template}
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        # Files written before evaluation followed the run's temperature and chat flag were measured at T=1, raw.
        stored = cached.get("eval_settings", {"temperature": 1.0, "use_chat_template": False})
        if stored != settings:
            raise StageError(f"{path} was measured with {stored}, not this run's {settings}: delete it to re-evaluate")
        cached.pop("completions", None)
        return cached
    model, tokenizer = load_policy(model_dir)
    # The prompt format and temperature of sampling: a policy trained on chat prompts is scored on chat prompts.
    ev = evaluate_policy(test, model, tokenizer, max_new_tokens=cfg.max_new_tokens, samples=cfg.eval_samples,
                         temperature=cfg.temperature, seed=cfg.eval_seed, batch_size=cfg.batch_size,
                         use_chat_template=cfg.use_chat_template)
    result = {"method": name, "seed": cfg.seed, **ev.as_dict(), "model_dir": model_dir, "eval_settings": settings}
    done = Path(model_dir) / "done.json"
    if done.exists():
        result["train"] = json.loads(done.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, "completions": scored_completions(ev)}, indent=2), encoding="utf-8")
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
    check_local_model_path(cfg.base_policy)  # "no such directory" before the run directory is written
    write_resolved_config(cfg)
    data = prepare_data(cfg)
    main = process_state().is_main_process
    if main:
        print(preflight(cfg, data).format(), flush=True)
    results: dict[str, Any] = {}
    for name in cfg.methods:
        try:
            model_dir = run_method(cfg, name, data)
        except MethodSkipped as skip:
            results[name] = _skipped(skip, name, cfg.seed, main)
            continue
        if main:
            results[name] = evaluate_method(cfg, name, model_dir, data.test_problems)
    process_state().wait_for_everyone()
    return {"data": data_summary(data), "results": results}


# ---------------------------------------------------------------------------------------------------------------
# Multi-seed runs and tables (recipes/compare_methods.py, recipes/train_step_rl.py, recipes/bcpg_experiment.py)
# ---------------------------------------------------------------------------------------------------------------


def _skipped(skip: MethodSkipped, name: str, seed: int, main: bool) -> dict[str, Any]:
    if main:
        print(f"{name}: skipped: {skip.reason} (build: {skip.build})", flush=True)
    return skip.result(name, seed)


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd


def results_table(runs: dict[int, dict[str, Any]]) -> str:
    """Markdown table over seeds: mean ± sample std (and per-seed values) of greedy and sampled accuracy.

    Seeds where a method was skipped are left out of its mean and named in the per-seed column; a method skipped
    on every seed gets ``skipped: <reason>`` and its build counts.
    """
    methods: list[str] = []
    for run in runs.values():
        methods += [m for m in run["results"] if m not in methods]
    lines = ["| method | seeds | greedy % (mean ± std) | sampled % (mean ± std) | per-seed greedy | rows |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m in methods:
        every = [run["results"][m] for run in runs.values() if m in run["results"]]
        rs = [r for r in every if "skipped" not in r]
        skipped = [r for r in every if "skipped" in r]
        if not rs:
            seeds = ",".join(str(r["seed"]) for r in skipped)
            build = skipped[0].get("build") or {}
            lines.append(f"| {m} | {seeds} | skipped: {skipped[0]['skipped']} | - | build: {json.dumps(build)} "
                         f"| {build.get('kept', 0)} |")
            continue
        g, gs = _mean_std([100 * r["greedy"] for r in rs])
        s, ss = _mean_std([100 * r["sampled"] for r in rs])
        rows = [str(r.get("train", {}).get("rows", "-")) for r in rs]
        per_seed = ", ".join(f"{100 * r['greedy']:.1f}" for r in rs)
        per_seed += "".join(f"; seed {r['seed']} skipped: {r['skipped']}" for r in skipped)
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(f"| {m} | {seeds} | {g:.1f} ± {gs:.1f} | {s:.1f} ± {ss:.1f} | {per_seed} | {'/'.join(rows)} |")
    return "\n".join(lines)


def run_seeds(cfg: PipelineConfig, seeds: list[int]) -> dict[int, dict[str, Any]]:
    """``run_pipeline`` for each seed (fresh post-training prompts, sampling and training seeds each)."""
    return {seed: run_pipeline(dataclasses.replace(cfg, seed=seed)) for seed in seeds}


def run_variants(pipeline_cfg: PipelineConfig, variants: dict[str, dict[str, Any]],
                 seeds: Sequence[int]) -> dict[int, dict]:
    """Train and evaluate named variants of pipeline methods on the same data per seed.

    ``variants``: name → ``{"method": <METHODS key>, **options}`` (e.g. ``{"method": "bcpg_nsa",
    "beta": -0.5, "annotator": "oracle"}``). Each variant's model is ``run_dir/models/<name>``, its evaluation
    ``run_dir/eval/<name>.json`` (both reused on a rerun). Returns ``{seed: {"data": ..., "results": ...}}`` in the
    shape ``results_table`` reads.
    """
    runs: dict[int, dict] = {}
    check_local_model_path(pipeline_cfg.base_policy)  # before any run directory is written
    for seed in seeds:
        cfg = dataclasses.replace(pipeline_cfg, seed=seed)
        write_resolved_config(cfg)
        write_config_file(cfg.run_dir / "variants.yaml", variants)
        data = prepare_data(cfg)
        specs = [(name, dict(spec).get("method", name), {k: v for k, v in spec.items() if k != "method"})
                 for name, spec in variants.items()]
        unknown = [(n, m) for n, m, _ in specs if m not in METHODS]
        if unknown:
            raise ValueError(f"variant {unknown[0][0]!r}: unknown method {unknown[0][1]!r}; "
                             f"registered: {sorted(METHODS)}")
        print(preflight(cfg, data, specs).format(), flush=True)
        results = {}
        for name, spec in variants.items():
            spec = dict(spec)
            method = spec.pop("method", name)
            out = cfg.run_dir / "models" / name
            if method == "base":
                model_dir = cfg.base_policy
            elif (out / "done.json").exists():
                model_dir = str(out)
            else:
                try:
                    model_dir = METHODS[method](MethodContext(cfg, data, spec, out, seed))
                except MethodSkipped as skip:
                    results[name] = _skipped(skip, name, seed, True)
                    continue
            results[name] = evaluate_method(cfg, name, model_dir, data.test_problems)
            bcpg_info = Path(model_dir) / "bcpg.json"
            if bcpg_info.exists():
                results[name]["bcpg"] = json.loads(bcpg_info.read_text(encoding="utf-8"))
        runs[seed] = {"data": data_summary(data), "results": results}
    return runs
