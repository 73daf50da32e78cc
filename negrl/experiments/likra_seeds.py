"""Likra on multiple-choice benchmarks over seeds: base, SFT and Likra per negative arm, paired by seed.

One ``LikraSeedsConfig`` = several benchmarks × several seeds. For each (benchmark, seed s):

1. ``n_train`` training questions drawn with seed ``s`` from the whole train split (``train_subset``), the same for
   every arm of that seed, so that arm differences are paired by seed;
2. one positive head and, per negative arm (``negatives``: name → ``NegativeSpec``), one negative head, all from
   the same seed-``s`` initialisation (the negative head's initial weights are restored before each arm);
3. the test options scored under the base (once per benchmark), the positive head and each negative head.

Every stage is cached under ``{output_dir}/{benchmark}/seed{s}/`` (a rerun skips what is on disk, so an interrupted
run resumes), and ``summarise`` turns the caches into per-arm means over seeds and paired differences (Likra − SFT,
and the ``contrast`` between two negative arms) with t-intervals over seeds.
"""

from __future__ import annotations

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
        confidence: Level of the t-intervals over seeds.
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
    confidence: float = 0.95
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
