"""How much do negatives buy? The negative-volume ablation and the data-efficiency curve (Setlur et al. 2024, Fig. 1).

Both experiments sample **once** per seed (the shared pipeline's cached data stages, ``negrl.experiments.pipeline.prepare_data``,
with the largest volume any point needs) and then *subsample* the cached records per sweep point, so no rollout or
step label is ever regenerated:

- ``subsample_negatives``: every positive (verified-correct rollout) is kept; the wrong rollouts of each problem are
  taken in a fixed seeded order (``negative_order``) and cut to the point's volume — ``"per_problem"`` keeps ``v``
  of them, ``"ratio"`` keeps ``floor(v · #positives)``. A smaller point's negatives are always a prefix (subset) of a
  larger point's. Volume 0 has no negatives: it trains the sweep's ``zero_method`` (default ``"rft"``: the same
  positives, no negatives), so all volume-0 points of a seed are one shared run.
- ``subsample_problems``: the first ``n`` post-training problems (a nested prefix) with their records.

Each point runs one registered pipeline method (``negrl.experiments.methods.METHODS``) on the subsampled data in its own
directory ``<output_dir>/points/<key>/seed<k>/`` (model, eval JSON, resolved config) and leaves ``row.json``; a rerun
reads the rows of finished points and trains nothing. Several workers may run the same sweep at once (each point and
each seed's data stage is claimed with a lock file; a worker skips points another live worker holds); the outputs
are then written from the finished points (``report_only``). Likra sweeps (``kind: "likra"``) train the positive and the
negative head once per seed (``negrl.experiments.likra_curve``: power-of-two checkpoints) and read the whole negative-volume
curve from the cached checkpoint scores.

The rows become ``runs.csv``, ``table.md``, PNG plots and the data multiplier in ``negrl.experiments.ablation_report``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negrl.experiments.compare import evaluate_method, run_method
from negrl.experiments.config import build, read_yaml
from negrl.experiments.config import write_resolved_config as write_config_file
from negrl.experiments.methods import METHODS
from negrl.experiments.pipeline import (
    PipelineConfig,
    PipelineData,
    load_pipeline_config,
    prepare_data,
    write_resolved_config,
)


KINDS = ("per_problem", "ratio", "likra")
PAIR_METHODS = ("step_dpo", "step_dpo_prefix", "outcome_dpo")  # builders with their own per-problem pair cap
CSV_FIELDS = ["experiment", "method", "trained_as", "kind", "volume", "seed", "greedy", "sampled", "rows", "seconds"]
PrepareFn = Callable[[PipelineConfig], PipelineData]


# ---------------------------------------------------------------------------------------------------------------
# Subsampling cached records (deterministic, nested)
# ---------------------------------------------------------------------------------------------------------------


def negative_order(problem_id: str, rollout_ids: Sequence[str], seed: int) -> list[str]:
    """The fixed order in which a problem's wrong rollouts enter the sweep (seeded per problem, input-order free)."""
    ids = sorted(rollout_ids)
    random.Random(f"negatives/{seed}/{problem_id}").shuffle(ids)
    return ids


def negatives_kept(n_wrong: int, n_correct: int, kind: str, volume: float) -> int:
    """How many of a problem's ``n_wrong`` negatives a point of ``kind`` / ``volume`` keeps (monotone in volume)."""
    if volume < 0:
        raise ValueError(f"volume must be >= 0, got {volume}")
    if kind == "per_problem":
        return min(n_wrong, int(volume))
    if kind == "ratio":
        return min(n_wrong, int(math.floor(volume * n_correct + 1e-9)))
    raise ValueError(f"kind must be 'per_problem' or 'ratio' for rollout subsampling, got {kind!r}")


def _restrict(data: PipelineData, problems: list[Any], keep_ids: set[str]) -> PipelineData:
    return dataclasses.replace(
        data, problems=problems,
        rollouts=[r for r in data.rollouts if r.rollout_id in keep_ids],
        verdicts=[v for v in data.verdicts if v.rollout_id in keep_ids],
        step_labels=[s for s in data.step_labels if s.rollout_id in keep_ids])


def subsample_negatives(data: PipelineData, kind: str, volume: float, seed: int) -> PipelineData:
    """All positives and unverifiable rollouts, plus the first ``negatives_kept`` wrong rollouts of each problem."""
    correct = {v.rollout_id: v.correct for v in data.verdicts}
    by_problem: dict[str, list[str]] = {}
    for r in data.rollouts:
        by_problem.setdefault(r.problem_id, []).append(r.rollout_id)
    keep: set[str] = set()
    for pid, ids in by_problem.items():
        wrong = [i for i in ids if correct.get(i) is False]
        n_pos = sum(1 for i in ids if correct.get(i) is True)
        keep |= {i for i in ids if correct.get(i) is not False}
        keep |= set(negative_order(pid, wrong, seed)[: negatives_kept(len(wrong), n_pos, kind, volume)])
    return _restrict(data, list(data.problems), keep)


def subsample_problems(data: PipelineData, n: int) -> PipelineData:
    """The first ``n`` post-training problems (nested: a smaller ``n`` is a prefix) and all their records."""
    if n > len(data.problems):
        raise ValueError(f"n_problems={n} but only {len(data.problems)} post-training problems are cached")
    problems = list(data.problems[:n])
    pids = {p.problem_id for p in problems}
    return _restrict(data, problems, {r.rollout_id for r in data.rollouts if r.problem_id in pids})


# ---------------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SweepSpec:
    """One swept axis: ``method`` at each of ``values`` of ``kind`` (``per_problem`` / ``ratio`` / ``likra``).

    Attributes:
        zero_method: What volume 0 trains (no negatives), default ``"rft"`` — the same positives, no negatives.
        options: Method options merged over the pipeline's ``method_options[method]`` for this sweep.
        optional: Skip (with a note) instead of failing when ``method`` is not registered in ``METHODS``, and log
            (not raise) a failure of one of its points.
        likra: ``LikraExperimentConfig`` fields for ``kind: likra`` (``seed`` / ``output_dir`` are set per seed).
        likra_w / likra_metric / likra_mode: Which Likra score is reported (``acc`` or ``acc_norm``).
    """

    method: str
    kind: str
    values: list[float]
    zero_method: str = "rft"
    options: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    likra: dict[str, Any] = field(default_factory=dict)
    likra_w: float = 1.0
    likra_metric: str = "acc"
    likra_mode: str = "likra"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"sweep {self.method!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.values or sorted(self.values) != list(self.values):
            raise ValueError(f"sweep {self.method!r}: values must be non-empty and ascending, got {self.values}")


@dataclass
class AblationConfig:
    """The negative-volume ablation (``kind != None`` sweeps) or the data-efficiency curve (``n_problems``).

    Attributes:
        pipeline_config: A pipeline YAML (e.g. ``recipes/configs/step_rl/arithmetic.yaml``) whose fields are the base.
        pipeline: ``PipelineConfig`` overrides over that file (its ``output_dir`` is ``data_dir``).
        data_dir: Where the sampled data is cached (default ``<output_dir>/data``); experiments with the same
            pipeline settings can share it (same prompts, samples and labels; nothing sampled twice).
        seeds: Seeds; each has its own post-training prompts, samples, labels and training seed.
        sweeps: Negative-volume axes (ablation).
        n_problems / methods: Efficiency curve: training-set sizes and the methods trained at each.
        method_sizes: Per-method sizes overriding ``n_problems`` (e.g. the target only at small sizes, the
            references up to 8× larger: the multiplier needs the reference curve to reach the target).
        target / references / metric: The multiplier of positive data each reference needs to match ``target``.
        bootstrap: Bootstrap resamples over seeds for the multiplier interval (0 = none).
        reference: Also evaluate the untrained base policy on the same held-out problems (row ``base`` of kind
            ``reference``; a dashed line in the plots), so every curve is read against where it started.
    """

    output_dir: str = "runs/ablation/arithmetic"
    pipeline_config: str | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    sweeps: list[SweepSpec] = field(default_factory=list)
    n_problems: list[int] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: ["sft_more", "rft", "step_dpo"])
    method_sizes: dict[str, list[int]] = field(default_factory=dict)
    target: str = "step_dpo"
    references: list[str] = field(default_factory=lambda: ["sft_more", "rft"])
    metric: str = "greedy"
    bootstrap: int = 1000
    reference: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AblationConfig:
        """Load a YAML plus non-None overrides (an unknown or mistyped key is an error naming the file)."""
        d = read_yaml(path)
        d.update({k: v for k, v in overrides.items() if v is not None})
        return build(cls, d, str(path))

    def pipeline_cfg(self) -> PipelineConfig:
        """The shared data configuration: cached once under ``<output_dir>/data/seed<k>``."""
        over = {**self.pipeline, "output_dir": self.data_dir or str(Path(self.output_dir) / "data")}
        sizes = list(self.n_problems) + [n for v in self.method_sizes.values() for n in v]
        if sizes:
            over["n_prompts"] = max(sizes)
        return load_pipeline_config(self.pipeline_config, **over)

    def write(self, path: Path) -> None:
        write_config_file(path, self)


# ---------------------------------------------------------------------------------------------------------------
# Running points (cached per point) and sweeps
# ---------------------------------------------------------------------------------------------------------------


def format_volume(v: float) -> str:
    """``2`` for 2.0, ``0.5`` for 0.5 (point keys and tables)."""
    return str(int(v)) if float(v).is_integer() else str(v)


def claim(lock: Path) -> bool:
    """Take ``lock`` for this process (several workers can share one sweep); False while another live process holds
    it. A lock left by a dead process is taken over. Release with ``lock.unlink()``."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text(encoding="utf-8") or 0)
                os.kill(pid, 0)
                return pid == os.getpid()
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except PermissionError:  # alive, another user
                return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def prepare_shared(cfg: PipelineConfig, prepare: PrepareFn, poll_s: float = 10.0) -> PipelineData:
    """``prepare(cfg)`` by one worker at a time per seed (the others wait, then read the cached stages).

    Also applies ``cfg.threads`` (torch intra-op threads) as ``negrl.experiments.compare.run_pipeline`` does."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    lock = cfg.run_dir / "prepare.lock"
    while not claim(lock):
        time.sleep(poll_s)
    try:
        return prepare(cfg)
    finally:
        lock.unlink(missing_ok=True)


def point_options(cfg: PipelineConfig, method: str, extra: dict[str, Any], uncapped: bool) -> dict[str, Any]:
    """The method's options for a point; ``uncapped`` lifts the pair builder's own cap (subsampling sets volume)."""
    opts = {**cfg.method_options.get(method, {}), **extra}
    if uncapped and method in PAIR_METHODS:
        opts["pairs"] = {**opts.get("pairs", {}), "negatives_per_problem": None}
    return opts


def run_point(
    cfg: PipelineConfig, root: Path, key: str, method: str, data: PipelineData | None, options: dict[str, Any],
) -> dict[str, Any] | None:
    """Train ``method`` on ``data`` in ``root/points/<key>/seed<k>`` and evaluate it; cached in ``row.json``.

    ``data=None`` (report-only mode) returns the cached row or None for a point that has not finished."""
    pcfg = dataclasses.replace(cfg, output_dir=str(root / "points" / key),
                               method_options={**cfg.method_options, method: options})
    row_path = pcfg.run_dir / "row.json"
    if row_path.exists():
        return json.loads(row_path.read_text(encoding="utf-8"))
    if data is None:
        return None
    if method not in METHODS:
        raise ValueError(f"point {key}: method {method!r} is not registered; registered: {sorted(METHODS)}")
    lock = pcfg.run_dir / "point.lock"
    if not claim(lock):
        return None  # another worker is training this point
    try:
        write_resolved_config(pcfg)
        t0 = time.perf_counter()
        model_dir = run_method(pcfg, method, data)
        seconds = time.perf_counter() - t0
        ev = evaluate_method(pcfg, method, model_dir, data.test_problems)
        row = {"trained_as": method, "seed": cfg.seed, "greedy": ev["greedy"], "sampled": ev.get("sampled"),
               "rows": (ev.get("train") or {}).get("rows", 0), "seconds": round(seconds, 2), "model_dir": model_dir}
        row_path.write_text(json.dumps(row, indent=2), encoding="utf-8")
    finally:
        lock.unlink(missing_ok=True)
    return row


def _negative_point(cfg: PipelineConfig, root: Path, spec: SweepSpec, value: float, data: PipelineData | None,
                    ) -> dict | None:
    if value == 0:
        opts = point_options(cfg, spec.zero_method, {}, uncapped=False)
        sub = subsample_negatives(data, "per_problem", 0, cfg.seed) if data else None
        row = run_point(cfg, root, f"{spec.zero_method}__no_negatives", spec.zero_method, sub, opts)
    else:
        sub = subsample_negatives(data, spec.kind, value, cfg.seed) if data else None
        opts = point_options(cfg, spec.method, spec.options, uncapped=True)
        row = run_point(cfg, root, f"{spec.method}__{spec.kind}_{format_volume(value)}", spec.method, sub, opts)
    return None if row is None else {**row, "method": spec.method, "kind": spec.kind, "volume": value}


def reference_row(cfg: PipelineConfig, root: Path, data: PipelineData | None, experiment: str) -> list[dict]:
    """The base policy on the seed's held-out problems (nothing trained), as a ``reference`` row (cached)."""
    row = run_point(cfg, root, "base", "base", data, {})
    return [] if row is None else [{"experiment": experiment, **row, "method": "base", "kind": "reference",
                                    "volume": 0}]


def likra_rows(spec: SweepSpec, root: Path, seed: int) -> list[dict[str, Any]]:
    """Train both Likra heads once for this seed (power-of-two checkpoints; skipped when done), score, read volumes."""
    from negrl.experiments import likra_curve as lx

    out = root / "points" / f"{spec.method}__likra" / f"seed{seed}"
    lcfg = lx.LikraExperimentConfig.from_dict({**spec.likra, "seed": seed, "output_dir": str(out)},
                                              where=f"sweep {spec.method!r} likra")
    marker = out / "trained.json"
    t0 = time.perf_counter()
    if not marker.exists():
        lx.train(lcfg)
        marker.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 2)}), encoding="utf-8")
    lx.evaluate(lcfg, show_progress=False)
    seconds = json.loads(marker.read_text(encoding="utf-8"))["seconds"]
    rows = []
    for r in lx.volume_rows(out, ws=[spec.likra_w]):
        neg = r["neg_n"]
        if (neg == 0 and r["mode"] == "sft") or (neg > 0 and r["mode"] == spec.likra_mode and r["w"] == spec.likra_w):
            if neg in spec.values or not spec.values:
                rows.append({"method": spec.method, "trained_as": "likra" if neg else "likra_pos_only",
                             "kind": "likra", "volume": neg, "seed": seed, "greedy": r[spec.likra_metric],
                             "sampled": None, "rows": neg, "seconds": seconds})
    return rows


def _missing(specs: Sequence[SweepSpec]) -> list[str]:
    return sorted({s.method for s in specs if s.kind != "likra" and s.method not in METHODS}
                  | {s.zero_method for s in specs if s.kind != "likra" and 0 in s.values and s.zero_method not in METHODS})


def run_ablation(acfg: AblationConfig, prepare: PrepareFn = prepare_data, log: Callable[[str], None] = print,
                 report_only: bool = False) -> list[dict[str, Any]]:
    """Every sweep point of every seed (data prepared once per seed; finished points reused); returns the rows.

    ``report_only``: prepare and train nothing; return the rows of the points that have finished."""
    from tqdm.auto import tqdm

    root = Path(acfg.output_dir)
    acfg.write(root / "ablation_config.yaml")
    missing = _missing(acfg.sweeps)
    specs = []
    for s in acfg.sweeps:
        if s.method in missing or (0 in s.values and s.zero_method in missing):
            if not s.optional:
                raise ValueError(f"sweep {s.method!r}: method(s) {missing} not registered in negrl.experiments.methods.METHODS")
            log(f"skipping sweep {s.method!r} ({s.kind}): not registered in negrl.experiments.methods.METHODS")
            continue
        specs.append(s)
    base = acfg.pipeline_cfg()
    rows: list[dict[str, Any]] = []
    for seed in acfg.seeds:
        cfg = dataclasses.replace(base, seed=seed)
        rollout_specs = [s for s in specs if s.kind != "likra"]
        data = prepare_shared(cfg, prepare) if rollout_specs and not report_only else None
        if acfg.reference and rollout_specs:
            rows += reference_row(cfg, root, data, "negatives")
        points = [(s, v) for s in rollout_specs for v in s.values]
        for s, v in tqdm(points, desc=f"ablation seed {seed}", disable=not cfg.show_progress):
            try:
                row = _negative_point(cfg, root, s, v, data)
            except Exception as e:  # an optional sweep's failure is reported, not fatal to the others
                if not s.optional:
                    raise
                log(f"sweep {s.method!r} {s.kind}={v} seed {seed} failed: {type(e).__name__}: {e}")
                row = None
            rows += [] if row is None else [{"experiment": "negatives", **row}]
        for s in (s for s in specs if s.kind == "likra" and not report_only):
            rows += [{"experiment": "negatives", **r} for r in likra_rows(s, root, seed)]
    return rows


def run_efficiency(acfg: AblationConfig, prepare: PrepareFn = prepare_data, report_only: bool = False,
                   ) -> list[dict[str, Any]]:
    """Each method of ``acfg.methods`` at each ``n_problems`` (nested prefixes of one cached data set per seed).

    ``report_only``: prepare and train nothing; return the rows of the points that have finished."""
    from tqdm.auto import tqdm

    if not acfg.n_problems and not acfg.method_sizes:
        raise ValueError("data efficiency: n_problems is empty")
    unknown = [m for m in acfg.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"data efficiency: method(s) {unknown} not registered; registered: {sorted(METHODS)}")
    root = Path(acfg.output_dir)
    acfg.write(root / "efficiency_config.yaml")
    base = acfg.pipeline_cfg()
    rows: list[dict[str, Any]] = []
    for seed in acfg.seeds:
        cfg = dataclasses.replace(base, seed=seed)
        data = None if report_only else prepare_shared(cfg, prepare)
        if acfg.reference and "base" not in acfg.methods:
            rows += reference_row(cfg, root, data, "efficiency")
        points = sorted((n, m) for m in acfg.methods for n in acfg.method_sizes.get(m, acfg.n_problems))
        points = [(m, n) for n, m in points]
        for m, n in tqdm(points, desc=f"efficiency seed {seed}", disable=not cfg.show_progress):
            opts = point_options(cfg, m, {}, uncapped=False)
            row = run_point(cfg, root, f"{m}__n{n}", m, subsample_problems(data, n) if data else None, opts)
            if row is not None:
                rows.append({"experiment": "efficiency", **row, "method": m, "kind": "n_problems", "volume": n})
    return rows
