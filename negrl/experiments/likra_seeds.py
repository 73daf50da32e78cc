"""Likra on multiple-choice benchmarks over seeds: base, SFT and Likra per negative arm, paired by seed.

One ``LikraSeedsConfig`` = several benchmarks × several seeds. For each (benchmark, seed s):

1. ``n_train`` training questions drawn with seed ``s`` from the whole train split (``train_subset``), the same for
   every arm of that seed, so that arm differences are paired by seed;
2. one positive head and, per negative arm (``negatives``: name → ``NegativeSpec``), one negative head, all from
   the same seed-``s`` initialisation (the negative head's initial weights are restored before each arm);
3. the test options scored under the base (once per benchmark), the positive head and each negative head.

Every stage is cached under ``{output_dir}/{benchmark}/seed{s}/`` (a rerun skips what is on disk, so an interrupted
run resumes), and ``summarise`` turns the caches into per-arm means over seeds and paired differences (Likra − SFT,
and the ``contrast`` between two negative arms) with 95 % t-intervals over seeds (``negrl.metrics.paired_difference``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from negrl.experiments.config import build, load_config, write_resolved_config
from negrl.likra.heads import LikraConfig
from negrl.likra.negatives import NegativeSpec
from negrl.metrics import PairedDifference, paired_difference
from negrl.records import Problem


def _default_negatives() -> dict[str, NegativeSpec]:
    return {"random": NegativeSpec("own", "random"), "near_miss": NegativeSpec("own", "hardest")}


@dataclass
class LikraSeedsConfig:
    """Likra vs SFT (and one negative arm vs another) on multiple-choice benchmarks over seeds.

    Attributes:
        model: Base model: a hub id, a local directory, or ``"smollm2"``.
        benchmarks: ``"arc_easy"`` / ``"arc_challenge"``, run in this order.
        seeds: Training-subset, pair-shuffle and head-initialisation seeds; run in this order per benchmark.
        n_train: Training questions per seed (one positive and one negative pair each).
        n_test: Test questions (the first ones of the split); ``None`` = all.
        test_split: ARC split to score (``"test"`` or ``"dev"``).
        answer_prefix: Put before each option (ARC: ``" "`` after ``"Answer:"``).
        negatives: Arm name → which wrong answer trains that arm's negative head.
        near_miss_length_norm: How the base scores options when a negative arm picks ``hardest`` / ``easiest``:
            ``"chars"`` / ``"bytes"`` (acc_norm's normalisers) or ``"none"`` (summed log-likelihood).
        contrast: Two negative arm names ``[a, b]``: the paired difference Likra(a) − Likra(b) is reported.
        heads: LoRA / optimiser settings of every head (``seed`` is overridden by each run's seed).
        ws: Negative-head weights reported.
        primary_w: The weight of the primary comparisons (fixed before the run; the other ws are secondary).
        eval_batch_size: Option sequences per forward.
        output_dir: Where caches, the summary and the figure go.
        dtype: Model dtype (``"auto"``: bf16 on GPU, fp32 on CPU).
    """

    model: str = "smollm2"
    benchmarks: list[str] = field(default_factory=lambda: ["arc_challenge", "arc_easy"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    n_train: int = 128
    n_test: int | None = 300
    test_split: str = "test"
    answer_prefix: str = " "
    negatives: dict[str, NegativeSpec] = field(default_factory=_default_negatives)
    near_miss_length_norm: str = "chars"
    contrast: list[str] | None = None
    heads: LikraConfig = field(default_factory=LikraConfig)
    ws: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    primary_w: float = 1.0
    eval_batch_size: int = 16
    output_dir: str = "outputs/likra/arc_seeds"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        bad = [b for b in self.benchmarks if b not in ("arc_easy", "arc_challenge")]
        if bad:
            raise ValueError(f"benchmarks: unknown {bad}; expected arc_easy and/or arc_challenge")
        if not self.negatives:
            raise ValueError("negatives: at least one negative arm is needed")
        if self.near_miss_length_norm not in ("chars", "bytes", "none"):
            raise ValueError(f"near_miss_length_norm must be 'chars', 'bytes' or 'none', got {self.near_miss_length_norm!r}")
        if self.contrast is not None and (len(self.contrast) != 2 or set(self.contrast) - set(self.negatives)):
            raise ValueError(f"contrast must name two negative arms of {sorted(self.negatives)}, got {self.contrast}")
        if self.primary_w not in self.ws:
            raise ValueError(f"primary_w={self.primary_w} is not one of ws={self.ws}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> LikraSeedsConfig:
        """Build from a (YAML) dict; an unknown or mistyped key names ``where`` (``negrl.experiments.config``)."""
        return build(cls, d, where)


def load_seeds_config(path: str | Path | None, overrides: list[str] | None = None) -> LikraSeedsConfig:
    """YAML file (optional) + ``key=value`` overrides (dotted keys reach ``heads.*`` / ``negatives.<arm>.*``)."""
    return load_config(LikraSeedsConfig, path, overrides or [])


# ------------------------------------------------------------------------------------------------ running


def train_subset(train: list[Problem], n: int, seed: int) -> list[Problem]:
    """``n`` questions drawn without replacement with ``random.Random(seed)`` from the whole train split, in the
    drawn order (a seed's subset, shared by every arm of that seed)."""
    if not 0 < n <= len(train):
        raise ValueError(f"n_train={n} must be in [1, {len(train)}] (the train split's size)")
    return [train[i] for i in random.Random(seed).sample(range(len(train)), n)]


def seed_dir(cfg: LikraSeedsConfig, benchmark: str, seed: int) -> Path:
    return Path(cfg.output_dir) / benchmark / f"seed{seed}"


def _save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary name, so an interrupted write never leaves a cache file that looks done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _load_logprobs(path: Path) -> Any:
    from negrl.likra.scoring import ChoiceLogprobs

    return ChoiceLogprobs(**torch.load(path))


def _splits(cfg: LikraSeedsConfig, benchmark: str) -> tuple[list[Problem], list[Problem]]:
    from negrl.benchmarks.arc import load_arc

    return load_arc(benchmark, "train"), load_arc(benchmark, cfg.test_split, limit=cfg.n_test)


def _score(cfg: LikraSeedsConfig, model: Any, tok: Any, problems: list[Problem], head: str, path: Path) -> None:
    from negrl.likra.scoring import score_choices

    if not path.exists():
        _save(asdict(score_choices(model, tok, problems, heads=(head,), answer_prefix=cfg.answer_prefix,
                                   batch_size=cfg.eval_batch_size, show_progress=False)), path)


def _near_miss_scores(cfg: LikraSeedsConfig, model: Any, tok: Any, subset: list[Problem], d: Path) -> list[list[float]]:
    """The base model's score of every option of the training subset (cached), as ``pick: hardest`` ranks them."""
    from negrl.likra.scoring import BASE

    _score(cfg, model, tok, subset, BASE, d / "train_base.pt")
    norm = None if cfg.near_miss_length_norm == "none" else cfg.near_miss_length_norm
    return _load_logprobs(d / "train_base.pt").per_question(BASE, norm)


def _train_or_load(model: Any, tok: Any, head: str, pairs: tuple[list[str], list[str]], heads: LikraConfig,
                   out: Path) -> None:
    """Train ``head`` on ``pairs`` into ``out/checkpoints/n{N}/{head}``, or load it when that checkpoint exists."""
    from negrl.likra.heads import list_checkpoints, load_head, train_head

    final = list_checkpoints(out, head).get(len(pairs[0]))
    if final is not None:
        load_head(model, final, head)
    else:
        train_head(model, tok, head, pairs[0], pairs[1], heads, out)


def run_seed(cfg: LikraSeedsConfig, benchmark: str, seed: int) -> dict[str, float]:
    """Train and score every head of one (benchmark, seed), skipping each stage already cached; stage wall times."""
    from negrl.likra.heads import attach_heads
    from negrl.likra.negatives import choice_pairs
    from negrl.likra.scoring import BASE
    from negrl.modeling import load_policy

    d, times = seed_dir(cfg, benchmark, seed), {}
    logps = d / "logps"
    wanted = [logps / "pos.pt"] + [logps / f"neg_{arm}.pt" for arm in cfg.negatives]
    if all(p.exists() for p in wanted):
        return times
    t0 = time.time()
    train, test = _splits(cfg, benchmark)
    subset = train_subset(train, cfg.n_train, seed)
    write_resolved_config(d / "config.json", {"experiment": cfg, "benchmark": benchmark, "seed": seed,
                                              "train_ids": [p.problem_id for p in subset]})
    model, tok = load_policy(cfg.model, dtype=cfg.dtype)
    _score(cfg, model, tok, test, BASE, Path(cfg.output_dir) / benchmark / "base_test.pt")
    needs_base = any(s.pick in ("hardest", "easiest") for s in cfg.negatives.values())
    base_scores = _near_miss_scores(cfg, model, tok, subset, d) if needs_base else None
    times["base_scoring_s"] = time.time() - t0
    heads = dataclasses.replace(cfg.heads, seed=seed)
    model = attach_heads(model, heads)
    neg_init = {k: v.detach().clone() for k, v in model.named_parameters() if ".neg." in k}
    pairs = {arm: choice_pairs(subset, spec, seed, base_scores, answer_prefix=cfg.answer_prefix)
             for arm, spec in cfg.negatives.items()}
    first = next(iter(pairs.values()))[0]
    if any(p[0] != first for p in pairs.values()):  # one positive head serves every arm only if this holds
        raise RuntimeError("the negative arms' positive pairs differ; the pos head cannot be shared")
    t0 = time.time()
    _train_or_load(model, tok, "pos", first, heads, d)
    _score(cfg, model, tok, test, "pos", logps / "pos.pt")
    times["pos_s"] = time.time() - t0
    for arm, (_, neg) in pairs.items():
        if (logps / f"neg_{arm}.pt").exists():
            continue
        t0 = time.time()
        with torch.no_grad():  # every arm's negative head starts from the same seed-s initialisation
            for k, v in model.named_parameters():
                if k in neg_init:
                    v.copy_(neg_init[k])
        _train_or_load(model, tok, "neg", neg, heads, d / arm)
        _score(cfg, model, tok, test, "neg", logps / f"neg_{arm}.pt")
        times[f"neg_{arm}_s"] = time.time() - t0
    return times


def run(cfg: LikraSeedsConfig, log: Any = print) -> None:
    """Every (benchmark, seed) in config order, resumably; appends each run's stage times to ``timing.jsonl``."""
    write_resolved_config(Path(cfg.output_dir) / "config.json", {"experiment": cfg})
    for benchmark in cfg.benchmarks:
        for seed in cfg.seeds:
            t0 = time.time()
            times = run_seed(cfg, benchmark, seed)
            if times:
                row = {"benchmark": benchmark, "seed": seed, "wall_s": round(time.time() - t0, 1),
                       **{k: round(v, 1) for k, v in times.items()}}
                with (Path(cfg.output_dir) / "timing.jsonl").open("a") as f:
                    f.write(json.dumps(row) + "\n")
                log(json.dumps(row))


# ------------------------------------------------------------------------------------------------ summary


def _mean_interval(values: list[float]) -> PairedDifference:
    """Mean over seeds with its 95 % t-interval: the one-sample interval is the paired difference against 0."""
    return paired_difference(values, [0.0] * len(values))


POS_BASE = "pos − base w={w:g}"


def likra_arm(neg: str, w: float) -> str:
    return f"Likra {neg} w={w:g}"


def seed_metrics(cfg: LikraSeedsConfig, benchmark: str, seed: int) -> dict[str, dict[str, float]] | None:
    """``{arm: {acc, acc_norm}}`` of one (benchmark, seed) from its caches, or None while any cache is missing."""
    from negrl.likra.scoring import BASE, ChoiceLogprobs

    root, d = Path(cfg.output_dir) / benchmark, seed_dir(cfg, benchmark, seed) / "logps"
    files = [root / "base_test.pt", d / "pos.pt"] + [d / f"neg_{arm}.pt" for arm in cfg.negatives]
    if not all(f.exists() for f in files):
        return None
    base, pos = _load_logprobs(files[0]), _load_logprobs(files[1])

    def with_heads(**logps: torch.Tensor) -> ChoiceLogprobs:
        return dataclasses.replace(base, logps={BASE: base.logps[BASE], **logps})

    def both(cl: ChoiceLogprobs, mode: str, w: float = 1.0) -> dict[str, float]:
        return {"acc": cl.accuracy(mode, w), "acc_norm": cl.accuracy(mode, w, normalise=True)}

    out = {"base": both(base, "base"), "SFT": both(with_heads(pos=pos.logps["pos"]), "sft")}
    # Control: the Likra score with an untrained negative head (a fresh LoRA head is the base: B = 0), i.e. the
    # positive head's likelihood ratio to the base. What Likra adds over it is what the negatives taught.
    out[POS_BASE.format(w=cfg.primary_w)] = both(with_heads(pos=pos.logps["pos"]), "pos_base", cfg.primary_w)
    for arm in cfg.negatives:
        cl = with_heads(pos=pos.logps["pos"], neg=_load_logprobs(d / f"neg_{arm}.pt").logps["neg"])
        for w in cfg.ws:
            out[likra_arm(arm, w)] = both(cl, "likra", w)
    return out


METRICS = ("acc", "acc_norm")


def summarise(cfg: LikraSeedsConfig) -> dict[str, Any]:
    """Per benchmark: the complete seeds, every arm's per-seed metrics, and the paired comparisons with intervals.

    Comparisons (paired by seed): each Likra arm − SFT at every w (``primary`` marks w = ``primary_w``), the
    ``contrast`` Likra(a) − Likra(b) at every w, and (``control``) each Likra arm − (pos − base) at ``primary_w``."""
    out: dict[str, Any] = {}
    for benchmark in cfg.benchmarks:
        per_seed = {s: m for s in cfg.seeds if (m := seed_metrics(cfg, benchmark, s)) is not None}
        seeds = list(per_seed)
        arms = {arm: {k: [per_seed[s][arm][k] for s in seeds] for k in METRICS} for arm in (per_seed[seeds[0]] if seeds else {})}
        pairs = [(likra_arm(neg, w), "SFT", w, False) for neg in cfg.negatives for w in cfg.ws]
        if cfg.contrast:
            pairs += [(likra_arm(cfg.contrast[0], w), likra_arm(cfg.contrast[1], w), w, False) for w in cfg.ws]
        pw = cfg.primary_w
        pairs += [(likra_arm(neg, pw), POS_BASE.format(w=pw), pw, True) for neg in cfg.negatives]
        comparisons = []
        for a, b, w, control in pairs if seeds else []:
            row: dict[str, Any] = {"a": a, "b": b, "w": w, "primary": w == pw and not control, "control": control}
            for k in METRICS:
                row[k] = asdict(paired_difference(arms[a][k], arms[b][k]))
            comparisons.append(row)
        intervals = {arm: {k: asdict(_mean_interval(v[k])) for k in METRICS} for arm, v in arms.items()}
        out[benchmark] = {"seeds": seeds, "missing_seeds": [s for s in cfg.seeds if s not in per_seed],
                          "arms": arms, "arm_intervals": intervals, "comparisons": comparisons}
    return out


def _pct(x: float) -> str:
    return "nan" if math.isnan(x) else f"{100 * x:.1f}"


def _iv(d: dict[str, Any], signed: bool = False) -> str:
    m = f"{100 * d['mean']:+.1f}" if signed else _pct(d["mean"])
    return m if math.isnan(d["lo"]) else f"{m} [{_pct(d['lo'])}, {_pct(d['hi'])}]"


def format_report(summary: dict[str, Any]) -> str:
    """Markdown: per benchmark, the arms' mean acc / acc_norm over seeds (per-seed values), then the paired
    differences with their t-intervals (accuracy points)."""
    lines: list[str] = []
    level = "95 %"
    for benchmark, s in summary.items():
        lines += [f"#### {benchmark}: seeds {s['seeds']}" + (f" (missing: {s['missing_seeds']})" if s["missing_seeds"] else ""), ""]
        if not s["seeds"]:
            lines += ["no complete seed yet", ""]
            continue
        lines += [f"| arm | acc mean [{level} CI] | acc per seed | acc_norm mean [{level} CI] | acc_norm per seed |",
                  "| --- | --- | --- | --- | --- |"]
        for arm, v in s["arms"].items():
            iv = s["arm_intervals"][arm]
            lines.append(f"| {arm} | {_iv(iv['acc'])} | {' / '.join(_pct(x) for x in v['acc'])} | "
                         f"{_iv(iv['acc_norm'])} | {' / '.join(_pct(x) for x in v['acc_norm'])} |")
        lines += ["", f"| paired difference (points) | acc: per seed | acc: mean [{level} CI] | acc_norm: per seed | "
                      f"acc_norm: mean [{level} CI] |", "| --- | --- | --- | --- | --- |"]
        for c in s["comparisons"]:
            tag = " (primary)" if c["primary"] else " (control)" if c.get("control") else ""
            b = c["b"].split(" w=")[0]
            name = f"{c['a']} − {f'({b})' if ' − ' in b else b}" + tag
            cells = [f"{' / '.join(f'{100 * x:+.1f}' for x in c[k]['diffs'])} | {_iv(c[k], signed=True)}" for k in METRICS]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
        lines.append("")
    return "\n".join(lines)


def plot_summary(summary: dict[str, Any], path: str | Path, w: float = 1.0) -> Path:
    """PNG of base, SFT and each Likra negative arm at ``w``: per benchmark and metric (acc, acc_norm), the mean
    over seeds with its t-interval, and every seed as a grey dot."""
    from negrl.experiments.figures import new_figure, save_figure

    series = [(b, k) for b in summary for k in METRICS]
    arms = [a for a in next(iter(summary.values()))["arms"] if a in ("base", "SFT") or a.endswith(f" w={w:g}")]
    fig, ax = new_figure((1.6 * len(arms) + 3, 4.2))
    width = 0.8 / max(1, len(series))
    for j, (benchmark, k) in enumerate(series):
        s = summary[benchmark]
        if not s["seeds"]:
            continue
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(arms))]
        ivs = [s["arm_intervals"][a][k] for a in arms]
        err = [[0.0 if math.isnan(iv["lo"]) else iv["mean"] - iv["lo"] for iv in ivs],
               [0.0 if math.isnan(iv["hi"]) else iv["hi"] - iv["mean"] for iv in ivs]]
        ax.errorbar(xs, [iv["mean"] for iv in ivs], yerr=err, fmt="o", capsize=3,
                    label=f"{benchmark} {k} ({len(s['seeds'])} seeds)")
        for x, a in zip(xs, arms):
            ax.plot([x] * len(s["arms"][a][k]), s["arms"][a][k], ".", color="gray", alpha=0.6)
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels([a.replace(f" w={w:g}", f"\n(w={w:g})") for a in arms])
    ax.set_ylabel("accuracy (mean over seeds, t-interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_report(cfg: LikraSeedsConfig, figure: str | Path | None = None) -> tuple[str, Path | None]:
    """Summarise the caches into ``{output_dir}/summary.json`` and ``report.md`` and draw the figure (default
    ``{output_dir}/accuracy.png``; none while no seed is complete). Returns (markdown, figure path)."""
    out = Path(cfg.output_dir)
    summary = summarise(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    text = format_report(summary)
    (out / "report.md").write_text(text + "\n")
    if not any(s["seeds"] for s in summary.values()):
        return text, None
    return text, plot_summary(summary, figure or out / "accuracy.png", w=cfg.primary_w)
