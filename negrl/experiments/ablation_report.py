"""Reporting of the ablation and data-efficiency runs (``negrl.experiments.ablation`` rows): CSV, Markdown, plots, multiplier.

- ``write_ablation_outputs``: ``runs.csv`` (one row per method × volume × seed), ``table.md`` (mean ± std over seeds)
  and ``negatives_<kind>.png`` (mean with a min–max band over seeds).
- ``write_efficiency_outputs``: the same plus the multiplier of positive data that SFT / RFT need to match per-step
  DPO (``data_multiplier``: first crossing, interpolated in log #problems; per seed, on the mean curves, and a
  bootstrap over seeds), as ``multiplier.md`` / ``multiplier.json``, and ``efficiency.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from negrl.experiments.ablation import CSV_FIELDS, AblationConfig, format_volume


# ---------------------------------------------------------------------------------------------------------------
# Outputs: CSV, Markdown table, plots
# ---------------------------------------------------------------------------------------------------------------


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One line per run with ``CSV_FIELDS`` (extra keys such as ``model_dir`` are left out)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    return path


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    """(mean, sample std, min, max)."""
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd, min(values), max(values)


def group_rows(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[float, list[dict[str, Any]]]]:
    """``{(method, kind): {volume: [row per seed]}}`` in first-seen order, volumes ascending."""
    out: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = {}
    for r in rows:
        out.setdefault((r["method"], r["kind"]), {}).setdefault(float(r["volume"]), []).append(r)
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Mean ± std over seeds (and per-seed values) of greedy and sampled accuracy for every (method, kind, volume)."""
    lines = ["| method | kind | volume | trained as | seeds | greedy % (mean ± std) | per-seed greedy | "
             "sampled % (mean ± std) | rows (mean) | train s (mean) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (method, kind), by_vol in group_rows(rows).items():
        for vol, rs in by_vol.items():
            g = _stats([100 * r["greedy"] for r in rs])
            sampled = [100 * r["sampled"] for r in rs if r.get("sampled") is not None]
            s = f"{_stats(sampled)[0]:.1f} ± {_stats(sampled)[1]:.1f}" if sampled else "-"
            per_seed = ", ".join(_pct(r["greedy"]) for r in rs)
            rows_m = sum(float(r.get("rows") or 0) for r in rs) / len(rs)
            secs = sum(float(r.get("seconds") or 0) for r in rs) / len(rs)
            lines.append(f"| {method} | {kind} | {format_volume(vol)} | {rs[0].get('trained_as', method)} | "
                         f"{','.join(str(r['seed']) for r in rs)} | {g[0]:.1f} ± {g[1]:.1f} | {per_seed} | {s} | "
                         f"{rows_m:.0f} | {secs:.0f} |")
    return "\n".join(lines)


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path, metric: str = "greedy", log_x: bool = False,
                xlabel: str = "volume", title: str = "", ylabel: str | None = None) -> Path:
    """PNG of ``metric`` vs volume: one line (mean over seeds) and a min–max band per (method, kind); ``reference``
    rows (the untrained base) are a dashed level."""
    from negrl.experiments.figures import new_figure, save_figure

    fig, ax = new_figure((6.4, 4.2))
    for (method, kind), by_vol in group_rows(rows).items():
        if kind == "reference":  # the untrained base: one level, not a curve
            vals = [100 * r[metric] for rs in by_vol.values() for r in rs if r.get(metric) is not None]
            if vals:
                ax.axhline(sum(vals) / len(vals), color="0.4", linestyle="--", linewidth=1,
                           label=f"{method} (untrained)")
            continue
        pts = [(v, _stats([100 * r[metric] for r in rs])) for v, rs in by_vol.items()
               if all(r.get(metric) is not None for r in rs)]
        if not pts:
            continue
        xs = [v for v, _ in pts]
        label = method if kind in ("n_problems", "per_problem") else f"{method} ({kind})"
        line, = ax.plot(xs, [s[0] for _, s in pts], marker="o", label=label)
        ax.fill_between(xs, [s[2] for _, s in pts], [s[3] for _, s in pts], color=line.get_color(), alpha=0.2)
    if log_x:
        ax.set_xscale("log", base=2)
    elif any(float(r["volume"]) == 0 for r in rows):
        ax.set_xscale("symlog", base=2, linthresh=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or f"held-out {metric} accuracy (%)")
    ax.set_title(title or "mean over seeds, band = min–max")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_ablation_outputs(rows: Sequence[dict[str, Any]], out: str | Path) -> dict[str, Path]:
    """``runs.csv``, ``table.md`` and one PNG per volume kind (``negatives_<kind>.png``) under ``out``."""
    out = Path(out)
    paths = {"csv": write_csv(rows, out / "runs.csv")}
    paths["table"] = out / "table.md"
    paths["table"].write_text(markdown_table(rows) + "\n", encoding="utf-8")
    labels = {"per_problem": "negatives per problem", "ratio": "negatives : positives ratio",
              "likra": "negative-head training examples"}
    reference = [r for r in rows if r["kind"] == "reference"]
    for kind in dict.fromkeys(r["kind"] for r in rows if r["kind"] != "reference"):
        sel = [r for r in rows if r["kind"] == kind] + (reference if kind != "likra" else [])
        ylabel = "held-out multiple-choice accuracy (%)" if kind == "likra" else None  # Likra: acc, not greedy
        paths[f"plot_{kind}"] = plot_curves(sel, out / f"negatives_{kind}.png", xlabel=labels.get(kind, kind),
                                            ylabel=ylabel)
    return paths


# ---------------------------------------------------------------------------------------------------------------
# The data multiplier: how many problems a reference method needs to match the target's accuracy
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Multiplier:
    """``n_match / n_target``: ``status`` is ``"interpolated"`` (exact), ``"at_most"`` (the reference already matches
    at its smallest size: the value is an upper bound) or ``"not_reached"`` (never matches: a lower bound)."""

    value: float
    status: str

    @property
    def text(self) -> str:
        if self.status == "interpolated":
            return f"{self.value:.2f}×"
        if self.status == "at_most":
            return "< 1× (reference already matches)" if self.value <= 1 else f"≤ {self.value:.2f}×"
        return f"> {self.value:.2f}× (not reached)"

    @property
    def sort_value(self) -> float:
        """A number for intervals: bounds count as their bound, ``not_reached`` as +inf."""
        return math.inf if self.status == "not_reached" else self.value


def data_multiplier(curve: Sequence[tuple[float, float]], n_target: float, acc_target: float) -> Multiplier:
    """How many more problems the reference ``curve`` (``(n_problems, accuracy)`` points) needs to reach
    ``acc_target``, relative to ``n_target``: the first crossing, interpolated linearly in ``log(n)``."""
    pts = sorted(curve)
    if not pts:
        raise ValueError("data_multiplier: empty reference curve")
    if pts[0][1] >= acc_target:
        return Multiplier(pts[0][0] / n_target, "at_most")
    for (n0, a0), (n1, a1) in zip(pts, pts[1:]):
        if a0 < acc_target <= a1:
            t = (acc_target - a0) / (a1 - a0)
            n = n1 if a1 == acc_target else math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))
            return Multiplier(n / n_target, "interpolated")
    return Multiplier(pts[-1][0] / n_target, "not_reached")


def _curve(rows: Sequence[dict[str, Any]], method: str, metric: str, seeds: Sequence[int]) -> dict[float, float]:
    """Mean ``metric`` over the rows of ``seeds`` (a seed listed twice counts twice: bootstrap) per #problems."""
    acc: dict[float, list[float]] = {}
    for s in seeds:
        for r in rows:
            if r["method"] == method and r["seed"] == s:
                acc.setdefault(float(r["volume"]), []).append(r[metric])
    return {n: sum(v) / len(v) for n, v in sorted(acc.items())}


def multiplier_rows(rows: Sequence[dict[str, Any]], target: str, references: Sequence[str], metric: str = "greedy",
                    bootstrap: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """For every size N of ``target`` and every reference: the multiplier of the mean curves, the per-seed
    multipliers (min–max) and a bootstrap-over-seeds 5–95% interval."""
    out = []
    for ref in references:
        # seeds with both curves (a partial sweep may miss some)
        seeds = sorted({r["seed"] for r in rows if r["method"] == target} & {r["seed"] for r in rows if r["method"] == ref})
        rng = random.Random(seed)
        draws = [[rng.choice(seeds) for _ in seeds] for _ in range(bootstrap)] if seeds else []
        for n, acc in _curve(rows, target, metric, seeds).items():
            if any(n not in _curve(rows, target, metric, [s]) for s in seeds):
                continue  # a seed lacks this size: no like-for-like comparison
            mean = data_multiplier(list(_curve(rows, ref, metric, seeds).items()), n, acc)
            per_seed = [data_multiplier(list(_curve(rows, ref, metric, [s]).items()), n,
                                        _curve(rows, target, metric, [s])[n]) for s in seeds]
            boot = sorted(data_multiplier(list(_curve(rows, ref, metric, d).items()), n,
                                          _curve(rows, target, metric, d)[n]).sort_value for d in draws)
            interval = (boot[int(0.05 * (len(boot) - 1))], boot[int(0.95 * (len(boot) - 1))]) if boot else None
            out.append({"target": target, "reference": ref, "n_problems": n, "target_acc": acc,
                        "reference_acc_same_n": _curve(rows, ref, metric, seeds).get(n), "multiplier": mean,
                        "per_seed": per_seed, "bootstrap_90": interval})
    return out


def _interval_text(iv: tuple[float, float] | None) -> str:
    if iv is None:
        return "-"
    return "[" + ", ".join("∞" if math.isinf(x) else f"{x:.2f}×" for x in iv) + "]"


def multiplier_table(mrows: Sequence[dict[str, Any]]) -> str:
    """Markdown: per target size and reference, the matched multiplier with per-seed values and bootstrap interval."""
    lines = ["| reference | target N | target acc % | reference acc % at same N | multiplier (mean curves) | "
             "per-seed | bootstrap 90% over seeds |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for m in mrows:
        per_seed = "; ".join(x.text for x in m["per_seed"])
        lines.append(f"| {m['reference']} | {format_volume(m['n_problems'])} | {_pct(m['target_acc'])} | "
                     f"{_pct(m['reference_acc_same_n'])} | {m['multiplier'].text} | {per_seed} | "
                     f"{_interval_text(m['bootstrap_90'])} |")
    return "\n".join(lines)


def write_efficiency_outputs(rows: Sequence[dict[str, Any]], acfg: AblationConfig, out: str | Path) -> dict[str, Any]:
    """``runs.csv``, ``table.md``, ``multiplier.md`` / ``multiplier.json`` and ``efficiency.png`` under ``out``."""
    out = Path(out)
    paths: dict[str, Any] = {"csv": write_csv(rows, out / "runs.csv")}
    paths["table"] = out / "table.md"
    paths["table"].write_text(markdown_table(rows) + "\n", encoding="utf-8")
    mrows = multiplier_rows(rows, acfg.target, [r for r in acfg.references if any(x["method"] == r for x in rows)],
                            acfg.metric, acfg.bootstrap)
    paths["multiplier"] = out / "multiplier.md"
    paths["multiplier"].write_text(multiplier_table(mrows) + "\n", encoding="utf-8")
    js = [{**m, "multiplier": dataclasses.asdict(m["multiplier"]) | {"text": m["multiplier"].text},
           "per_seed": [x.text for x in m["per_seed"]]} for m in mrows]
    (out / "multiplier.json").write_text(json.dumps(js, indent=2, default=str), encoding="utf-8")
    paths["plot"] = plot_curves(rows, out / "efficiency.png", metric=acfg.metric, log_x=True,
                                xlabel="training problems (log scale)")
    paths["multiplier_rows"] = mrows
    return paths
