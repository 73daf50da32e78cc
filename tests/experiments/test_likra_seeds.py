"""Likra over seeds: training subsets, paired t-intervals by hand, the summary of fake caches, a tiny end-to-end seed."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from negrl.experiments import likra_seeds as ls
from negrl.likra.heads import LikraConfig
from negrl.likra.scoring import BASE, ChoiceLogprobs
from negrl.records import Problem


def _mc(pid: str, gold: str = "B") -> Problem:
    return Problem(problem_id=pid, domain="choice", prompt=f"Question: {pid}?\nAnswer:", answer=gold,
                   choices=[f"{pid} a", f"{pid} bb", f"{pid} ccc"], choice_labels=["A", "B", "C"])


def test_mean_interval_over_seeds_by_hand():
    # .1 .2 .2: mean 1/6, s = sqrt(((-1/15)^2 + 2 (1/30)^2) / 2) = 0.057735, s/sqrt3 = 1/30,
    # t_{0.975, 2} = 4.303 (negrl.metrics' 3-decimal table) → half-width 0.1434333
    iv = ls._mean_interval([0.1, 0.2, 0.2])
    assert (iv.mean, iv.lo, iv.hi, iv.n) == pytest.approx((1 / 6, 1 / 6 - 0.1434333, 1 / 6 + 0.1434333, 3), abs=1e-6)
    one = ls._mean_interval([0.4])
    assert one.mean == 0.4 and math.isnan(one.lo) and math.isnan(one.hi)


def test_train_subset_is_seeded_distinct_and_shared_by_arms():
    train = [_mc(f"q{i}") for i in range(50)]
    a, b, c = ls.train_subset(train, 10, 0), ls.train_subset(train, 10, 0), ls.train_subset(train, 10, 1)
    assert [p.problem_id for p in a] == [p.problem_id for p in b]
    assert len({p.problem_id for p in a}) == 10 and {p.problem_id for p in a} != {p.problem_id for p in c}
    with pytest.raises(ValueError, match="n_train=51"):
        ls.train_subset(train, 51, 0)


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="contrast"):
        ls.LikraSeedsConfig(contrast=["near_miss", "nope"])
    with pytest.raises(ValueError, match="primary_w"):
        ls.LikraSeedsConfig(primary_w=2.0)
    with pytest.raises(ValueError, match="benchmarks"):
        ls.LikraSeedsConfig(benchmarks=["mmlu"])


def _cache(path: Path, head: str, logps: list[float], gold: list[int]) -> None:
    n = len(logps)
    cl = ChoiceLogprobs(logps={head: torch.tensor(logps)}, byte_lengths=torch.ones(n), group_sizes=[2] * (n // 2),
                        gold=gold, char_lengths=torch.ones(n))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(asdict(cl), path)


def test_summary_of_hand_made_caches(tmp_path):
    """Two questions of two options, gold = option 0 of each (lengths 1: acc_norm = acc). Base [-1, -2 | -2, -1]
    → 1/2. Both seeds: pos [-1, -1.5 | -1, -0.5] → SFT 1/2; near_miss neg [-3, -1 | -1, -3] → pos − neg
    [2, -0.5 | 0, 2.5] → 1/2. Random neg, seed 0: [-2, -1 | -2, -2] → [1, -0.5 | 1, 1.5] → 1/2; seed 1:
    [-3, -1 | -3, -1] → [2, -0.5 | 2, 0.5] → 2/2."""
    cfg = ls.LikraSeedsConfig(benchmarks=["arc_easy"], seeds=[0, 1, 2], ws=[1.0], output_dir=str(tmp_path),
                              contrast=["near_miss", "random"])
    root = tmp_path / "arc_easy"
    gold = [0, 0]
    _cache(root / "base_test.pt", BASE, [-1, -2, -2, -1], gold)
    for seed, rnd in ((0, [-2, -1, -2, -2]), (1, [-3, -1, -3, -1])):
        d = root / f"seed{seed}" / "logps"
        _cache(d / "pos.pt", "pos", [-1, -1.5, -1, -0.5], gold)
        _cache(d / "neg_random.pt", "neg", rnd, gold)
        _cache(d / "neg_near_miss.pt", "neg", [-3, -1, -1, -3], gold)
    _cache(root / "seed2" / "logps" / "pos.pt", "pos", [-1, -1.5, -1, -0.5], gold)  # incomplete seed: left out
    s = ls.summarise(cfg)["arc_easy"]
    assert s["seeds"] == [0, 1] and s["missing_seeds"] == [2]
    assert s["arms"]["base"]["acc"] == [0.5, 0.5] and s["arms"]["SFT"]["acc"] == [0.5, 0.5]
    assert s["arms"]["Likra random w=1"]["acc"] == [0.5, 1.0]
    assert s["arms"]["Likra near_miss w=1"]["acc"] == [0.5, 0.5]
    by_name = {(c["a"], c["b"]): c for c in s["comparisons"]}
    vs_sft = by_name[("Likra random w=1", "SFT")]["acc"]
    assert vs_sft["diffs"] == [0.0, 0.5] and vs_sft["mean"] == 0.25
    assert vs_sft["hi"] == pytest.approx(0.25 + 12.706 * 0.25, abs=1e-9)  # s/√2 = 0.25, t_{0.975, 1} = 12.706
    assert by_name[("Likra near_miss w=1", "Likra random w=1")]["acc"]["diffs"] == [0.0, -0.5]
    # control: pos − base = [0, 0.5 | 1, 0.5] → 1/2 on both seeds; Likra random − control = [0, 0.5]
    assert s["arms"]["pos − base w=1"]["acc"] == [0.5, 0.5]
    control = by_name[("Likra random w=1", "pos − base w=1")]
    assert control["control"] and not control["primary"] and control["acc"]["diffs"] == [0.0, 0.5]
    text = ls.format_report(ls.summarise(cfg))
    assert "| Likra random w=1 − SFT (primary) | +0.0 / +50.0 | +25.0 [-292.6, 342.6] |" in text
    assert "(missing: [2])" in text
    assert "| Likra near_miss w=1 − (pos − base) (control) | +0.0 / +0.0 |" in text
    png = ls.plot_summary(ls.summarise(cfg), tmp_path / "acc.png")
    assert png.stat().st_size > 0


def test_run_seed_end_to_end_on_a_tiny_model(tmp_path, monkeypatch, tiny_model, char_tokenizer):
    """A tiny Llama on synthetic questions: every cache is written, both negative arms start from the same
    initial negative head, the positive pairs are shared, and a rerun trains nothing."""
    from negrl.modeling import save_policy

    save_policy(tiny_model, char_tokenizer, tmp_path / "model")
    train, test = [_mc(f"t{i}") for i in range(24)], [_mc(f"s{i}", gold="A") for i in range(6)]
    monkeypatch.setattr(ls, "_splits", lambda cfg, benchmark: (train, test))
    starts: dict[str, dict[str, torch.Tensor]] = {}
    real = ls._train_or_load

    def spy(model, tok, head, pairs, heads, out):
        if head == "neg":
            starts[out.name] = {k: v.detach().clone() for k, v in model.named_parameters() if ".neg." in k}
        return real(model, tok, head, pairs, heads, out)

    monkeypatch.setattr(ls, "_train_or_load", spy)
    cfg = ls.LikraSeedsConfig(model=str(tmp_path / "model"), benchmarks=["arc_easy"], seeds=[3], n_train=16,
                              n_test=6, ws=[0.5, 1.0], output_dir=str(tmp_path / "out"), eval_batch_size=8,
                              heads=LikraConfig(batch_size=8, learning_rate=5e-2, checkpoint_every_power_of_two=False))
    times = ls.run_seed(cfg, "arc_easy", 3)
    assert set(times) == {"base_scoring_s", "pos_s", "neg_random_s", "neg_near_miss_s"}
    assert set(starts) == {"random", "near_miss"} and starts["random"].keys() == starts["near_miss"].keys()
    assert all(torch.equal(starts["random"][k], starts["near_miss"][k]) for k in starts["random"])
    d = tmp_path / "out" / "arc_easy" / "seed3"
    for f in ("logps/pos.pt", "logps/neg_random.pt", "logps/neg_near_miss.pt", "train_base.pt"):
        assert (d / f).exists(), f
    rnd = torch.load(d / "logps" / "neg_random.pt")["logps"]["neg"]
    near = torch.load(d / "logps" / "neg_near_miss.pt")["logps"]["neg"]
    assert not torch.equal(rnd, near)  # trained on different negatives
    starts.clear()
    assert ls.run_seed(cfg, "arc_easy", 3) == {} and starts == {}
    s = ls.summarise(cfg)["arc_easy"]
    assert s["seeds"] == [3] and all(0.0 <= v["acc"][0] <= 1.0 for v in s["arms"].values())
