"""Likra experiments on multiple-choice benchmarks: train both heads once, then score every checkpoint.

One run = one ``LikraExperimentConfig``: ``train`` trains the ``pos`` and ``neg`` heads (power-of-two checkpoints),
``evaluate`` scores the test options under the base and under every (head, checkpoint) and caches each score vector
in ``{output_dir}/logps/`` (so an interrupted evaluation resumes, and every (pos@P, neg@V, mode, w) combination is
computed afterwards for free), and ``curve_rows`` / ``volume_rows`` turn the cache into tables. ``plot_curve`` draws
the learning curve (accuracy vs training examples: SFT vs Likra vs Base-Likra).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from negrl.experiments.config import build, load_config, write_resolved_config
from negrl.likra.heads import LikraConfig, attach_heads, list_checkpoints, load_head, train_head
from negrl.likra.negatives import NegativeSpec, choice_pairs
from negrl.likra.scoring import BASE, ChoiceLogprobs, score_choices
from negrl.records import Problem


@dataclass
class LikraExperimentConfig:
    """A Likra run on a multiple-choice benchmark.

    Attributes:
        model: Base model: a hub id, a local directory, or ``"smollm2"``.
        benchmark: ``"arc_easy"``, ``"arc_challenge"`` or ``"arithmetic_choice"``.
        task_knobs: Knobs of ``arithmetic_choice`` (``negrl.tasks.get_task``).
        n_train: Training questions (one positive and one negative pair each); ``None`` = all.
        n_test: Test questions (the first ones of the split); ``None`` = all.
        test_split: ARC split to score (``"test"`` or ``"dev"``).
        fewshot: k-shot context from the training split (paper: 25 for ARC; 0 on CPU).
        answer_prefix: Put before each option (ARC: ``" "`` after ``"Answer:"``; arithmetic: ``""``).
        negative: Which wrong answer trains the negative head.
        heads: LoRA / optimiser settings of both heads.
        ws: Negative-head weights reported.
        eval_points: Checkpoint sizes N to evaluate (``None`` = all saved).
        eval_batch_size: Option sequences per forward (× number of heads).
        output_dir: Where checkpoints, caches, metrics and plots go.
        dtype: Model dtype (``"auto"``: bf16 on GPU, fp32 on CPU).
        seed: Data seed (pairs shuffle, distractors).
    """

    model: str = "smollm2"
    benchmark: str = "arc_easy"
    task_knobs: dict[str, Any] = field(default_factory=dict)
    n_train: int | None = 512
    n_test: int | None = 300
    test_split: str = "test"
    fewshot: int = 0
    answer_prefix: str = " "
    negative: NegativeSpec = field(default_factory=NegativeSpec)
    heads: LikraConfig = field(default_factory=LikraConfig)
    ws: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    eval_points: list[int] | None = None
    eval_batch_size: int = 8
    output_dir: str = "outputs/likra"
    dtype: str = "auto"
    seed: int = 42

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> LikraExperimentConfig:
        """Build from a (YAML) dict; an unknown or mistyped key names ``where`` (``negrl.experiments.config``)."""
        return build(cls, d, where)


def choice_problems(cfg: LikraExperimentConfig) -> tuple[list[Problem], list[Problem]]:
    """(train, test) multiple-choice problems of the configured benchmark."""
    if cfg.benchmark.startswith("arc_"):
        from negrl.benchmarks.arc import load_arc

        train = load_arc(cfg.benchmark, "train")
        test = load_arc(cfg.benchmark, cfg.test_split, limit=cfg.n_test)
        return train, test
    if cfg.benchmark == "arithmetic_choice":
        from negrl.tasks import get_task

        return get_task("arithmetic_choice", **cfg.task_knobs).make_splits(cfg.n_train or 1024, cfg.n_test or 256, cfg.seed)
    raise ValueError(f"unknown benchmark {cfg.benchmark!r}; expected arc_easy, arc_challenge or arithmetic_choice")


def fewshot_prefix(cfg: LikraExperimentConfig, train: list[Problem]) -> str:
    if cfg.fewshot <= 0:
        return ""
    from negrl.benchmarks.arc import fewshot_context

    return fewshot_context(train, cfg.fewshot, seed=cfg.seed)


def _load_base(cfg: LikraExperimentConfig) -> tuple[Any, Any]:
    from negrl.modeling import load_policy

    return load_policy(cfg.model, dtype=cfg.dtype)


def train(cfg: LikraExperimentConfig) -> dict[str, list[Path]]:
    """Train ``pos`` then ``neg`` on ``n_train`` questions; returns each head's checkpoint directories."""
    out = Path(cfg.output_dir)
    write_resolved_config(out / "config.json", {"experiment": cfg})
    train_set, _ = choice_problems(cfg)
    context = fewshot_prefix(cfg, train_set)
    train_set = train_set[: cfg.n_train] if cfg.n_train else train_set
    model, tok = _load_base(cfg)
    base_scores = None
    if cfg.negative.pick in ("hardest", "easiest"):
        cl = score_choices(model, tok, train_set, heads=(BASE,), context=context, answer_prefix=cfg.answer_prefix,
                           batch_size=cfg.eval_batch_size)
        flat = (cl.logps[BASE] / cl.byte_lengths).tolist()  # acc_norm-style scores pick the near miss
        base_scores, k = [], 0
        for n in cl.group_sizes:
            base_scores.append(flat[k : k + n])
            k += n
    (pp, pa), (np_, na) = choice_pairs(train_set, cfg.negative, cfg.seed, base_scores, context=context,
                                       answer_prefix=cfg.answer_prefix)
    model = attach_heads(model, cfg.heads)
    ckpts = {"pos": train_head(model, tok, "pos", pp, pa, cfg.heads, out)}
    ckpts["neg"] = train_head(model, tok, "neg", np_, na, cfg.heads, out)
    return ckpts


def evaluate(cfg: LikraExperimentConfig, show_progress: bool = True) -> dict[str, dict[int, Path]]:
    """Score the test options under the base and every (head, checkpoint); cached under ``{output_dir}/logps``."""
    out = Path(cfg.output_dir)
    cache = out / "logps"
    cache.mkdir(parents=True, exist_ok=True)
    train_set, test = choice_problems(cfg)
    context = fewshot_prefix(cfg, train_set)
    model, tok = _load_base(cfg)
    kwargs = {"context": context, "answer_prefix": cfg.answer_prefix, "batch_size": cfg.eval_batch_size,
              "show_progress": show_progress}
    base_file = cache / "base.pt"
    if not base_file.exists():
        torch.save(asdict(score_choices(model, tok, test, heads=(BASE,), **kwargs)), base_file)
    model = attach_heads(model, cfg.heads)
    done: dict[str, dict[int, Path]] = {}
    for head in ("pos", "neg"):
        points = list_checkpoints(out, head)
        if cfg.eval_points is not None:
            points = {n: p for n, p in points.items() if n in cfg.eval_points or n == max(points)}
        done[head] = {}
        for n, path in sorted(points.items(), reverse=True):  # the full-data checkpoint first
            f = cache / f"{head}_n{n}.pt"
            if not f.exists():
                load_head(model, path, head)
                torch.save(asdict(score_choices(model, tok, test, heads=(head,), **kwargs)), f)
            done[head][n] = f
    return done


def _load_cached(path: Path) -> ChoiceLogprobs:
    return ChoiceLogprobs(**torch.load(path))


def combine(output_dir: str | Path, pos_n: int | None, neg_n: int | None) -> ChoiceLogprobs:
    """Cached log-probs of base, ``pos@pos_n`` and ``neg@neg_n`` in one ``ChoiceLogprobs`` (``None`` = absent)."""
    cache = Path(output_dir) / "logps"
    base = _load_cached(cache / "base.pt")
    logps = {BASE: base.logps[BASE]}
    if pos_n is not None:
        logps["pos"] = _load_cached(cache / f"pos_n{pos_n}.pt").logps["pos"]
    if neg_n is not None:
        logps["neg"] = _load_cached(cache / f"neg_n{neg_n}.pt").logps["neg"]
    return ChoiceLogprobs(logps=logps, byte_lengths=base.byte_lengths, group_sizes=base.group_sizes, gold=base.gold,
                          char_lengths=base.char_lengths)


def _cached_points(output_dir: str | Path, head: str) -> list[int]:
    return sorted(int(f.stem.split("_n")[1]) for f in (Path(output_dir) / "logps").glob(f"{head}_n*.pt"))


def curve_rows(output_dir: str | Path, ws: list[float]) -> list[dict[str, Any]]:
    """Learning curve: for every N cached for both heads, base / SFT / Likra / Base-Likra / pos-base metrics."""
    rows: list[dict[str, Any]] = []
    base = combine(output_dir, None, None)
    rows += [{"n": 0, **r} for r in base.metrics(modes=("base",))]
    for n in sorted(set(_cached_points(output_dir, "pos")) & set(_cached_points(output_dir, "neg"))):
        for r in combine(output_dir, n, n).metrics(ws=ws):
            rows.append({"n": n, **r})
    return rows


def volume_rows(output_dir: str | Path, ws: list[float], pos_n: int | None = None) -> list[dict[str, Any]]:
    """Negative volume sweep: ``pos`` fixed at ``pos_n`` (default: its largest N), ``neg`` at every cached N."""
    pos_points = _cached_points(output_dir, "pos")
    pos_n = pos_n if pos_n is not None else max(pos_points)
    rows = [{"neg_n": 0, **r} for r in combine(output_dir, pos_n, None).metrics(modes=("sft",))]
    for v in _cached_points(output_dir, "neg"):
        for r in combine(output_dir, pos_n, v).metrics(modes=("likra", "base_likra"), ws=ws):
            rows.append({"neg_n": v, "pos_n": pos_n, **r})
    return rows


def plot_curve(rows: list[dict[str, Any]], path: str | Path, w: float = 1.0, metric: str = "acc_norm") -> Path:
    """PNG of ``metric`` vs training examples per head: SFT vs Likra vs Base-Likra (at weight ``w``), base as a line."""
    from negrl.experiments.figures import new_figure, save_figure

    fig, ax = new_figure((6, 4))
    for mode, label in (("sft", "SFT (pos head)"), ("likra", f"Likra (w={w})"), ("base_likra", f"Base-Likra (w={w})")):
        pts = sorted((r["n"], r[metric]) for r in rows if r["mode"] == mode and (mode == "sft" or r["w"] == w))
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    base = [r[metric] for r in rows if r["mode"] == "base"]
    if base:
        ax.axhline(base[0], color="gray", linestyle="--", label="base")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training examples per head")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def write_rows(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Rows as JSONL (one metrics dict per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def format_table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A markdown table of ``rows`` over ``keys`` (floats to 3 decimals)."""
    fmt = [" | ".join(f"{r.get(k):.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys) for r in rows]
    return "\n".join([" | ".join(keys), " | ".join("---" for _ in keys), *fmt])


def load_experiment_config(path: str | Path | None, overrides: list[str] | None = None) -> LikraExperimentConfig:
    """YAML file (optional) + ``key=value`` overrides (dotted keys for ``heads.*`` / ``negative.*``) → config."""
    return load_config(LikraExperimentConfig, path, overrides or [])
