"""Negative-volume ablation and data-efficiency curve: subsampling, caching, outputs, multiplier (no models)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest

from negrl.experiments import ablation
from negrl.experiments.ablation import (
    AblationConfig,
    SweepSpec,
    negatives_kept,
    run_ablation,
    run_efficiency,
    subsample_negatives,
    subsample_problems,
)
from negrl.experiments.ablation_report import (
    Multiplier,
    data_multiplier,
    multiplier_rows,
    write_ablation_outputs,
    write_efficiency_outputs,
)
from negrl.experiments.methods import METHODS
from negrl.experiments.pipeline import PipelineData
from negrl.records import Problem, Rollout, Step, StepLabels, Verdict


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_data(n_problems: int = 6, samples: int = 8) -> PipelineData:
    """Problem i has (i % 4) + 1 correct rollouts, one unverifiable (None) on problem 0, the rest wrong."""
    problems, rollouts, verdicts, labels = [], [], [], []
    for i in range(n_problems):
        pid = f"p{i}"
        problems.append(Problem(problem_id=pid, domain="arithmetic", prompt=f"Q{i}\n", answer="1"))
        for j in range(samples):
            rid = f"{pid}#{j}"
            correct = None if (i == 0 and j == samples - 1) else j <= i % 4
            rollouts.append(Rollout(rollout_id=rid, problem_id=pid, completion=f"c{j}\n", sample_index=j))
            verdicts.append(Verdict(rollout_id=rid, correct=correct))
            if correct is False:
                labels.append(StepLabels(rollout_id=rid, steps=[Step(text=f"c{j}\n", start=0, end=3)], values=[0.0],
                                         labels=[False], first_error=0, source="test"))
    test = [Problem(problem_id=f"t{i}", domain="arithmetic", prompt="T\n", answer="1") for i in range(3)]
    return PipelineData(problems, rollouts, verdicts, labels, test)


def _wrong_ids(data: PipelineData) -> set[str]:
    return {v.rollout_id for v in data.verdicts if v.correct is False}


def test_negatives_kept_counts() -> None:
    assert [negatives_kept(5, 2, "per_problem", v) for v in (0, 1, 2, 4, 8)] == [0, 1, 2, 4, 5]
    assert [negatives_kept(5, 2, "ratio", r) for r in (0, 0.5, 1, 2, 4)] == [0, 1, 2, 4, 5]
    assert negatives_kept(5, 3, "ratio", 0.5) == 1  # floor(1.5)
    with pytest.raises(ValueError, match="kind"):
        negatives_kept(5, 2, "likra", 1)


@pytest.mark.parametrize("kind,volumes", [("per_problem", [0, 1, 2, 4, 8]), ("ratio", [0, 0.5, 1, 2, 8])])
def test_subsample_negatives_deterministic_nested(kind: str, volumes: list[float]) -> None:
    data = fake_data()
    all_wrong = _wrong_ids(data)
    kept_before: set[str] = set()
    for v in volumes:
        sub = subsample_negatives(data, kind, v, seed=3)
        again = subsample_negatives(data, kind, v, seed=3)
        assert [r.rollout_id for r in sub.rollouts] == [r.rollout_id for r in again.rollouts]
        wrong = _wrong_ids(sub)
        assert kept_before <= wrong, "a smaller point's negatives must be a subset of a larger point's"
        kept_before = wrong
        # every positive and the unverifiable rollout stay; records stay joined
        assert {v.rollout_id for v in sub.verdicts if v.correct is not False} == \
            {v.rollout_id for v in data.verdicts if v.correct is not False}
        assert {r.rollout_id for r in sub.rollouts} == {v.rollout_id for v in sub.verdicts}
        assert {s.rollout_id for s in sub.step_labels} == wrong
        for i, p in enumerate(data.problems):
            n_pos, n_wrong = i % 4 + 1, sum(1 for x in all_wrong if x.startswith(p.problem_id + "#"))
            got = sum(1 for x in wrong if x.startswith(p.problem_id + "#"))
            assert got == negatives_kept(n_wrong, n_pos, kind, v)
    assert kept_before == all_wrong  # the largest point keeps every negative
    other = _wrong_ids(subsample_negatives(data, "per_problem", 2, seed=4))
    assert other != _wrong_ids(subsample_negatives(data, "per_problem", 2, seed=3))  # the seed picks the order


def test_subsample_problems_prefix() -> None:
    data = fake_data()
    sub = subsample_problems(data, 2)
    assert [p.problem_id for p in sub.problems] == ["p0", "p1"]
    assert {r.problem_id for r in sub.rollouts} == {"p0", "p1"} and len(sub.rollouts) == 16
    assert sub.test_problems == data.test_problems
    with pytest.raises(ValueError, match="n_problems=7"):
        subsample_problems(data, 7)


class FakeMethods:
    """Instrumented stand-ins for pipeline methods: record every training call; accuracy from the data."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: list[str], acc) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.prepared: list[int] = []
        for name in names:
            monkeypatch.setitem(METHODS, name, self._method(name, acc))
        monkeypatch.setattr(ablation, "evaluate_method", self._evaluate)
        monkeypatch.setattr(ablation, "write_resolved_config", lambda cfg: None)

    def _method(self, name: str, acc):
        def train(ctx) -> str:
            self.calls.append((name, ctx.options))
            n_wrong = len(_wrong_ids(ctx.data))
            ctx.output_dir.mkdir(parents=True, exist_ok=True)
            done = {"rows": n_wrong, "greedy": acc(name, len(ctx.data.problems), n_wrong, ctx.seed)}
            (ctx.output_dir / "done.json").write_text(json.dumps(done))
            return str(ctx.output_dir)
        return train

    @staticmethod
    def _evaluate(cfg, name, model_dir, test) -> dict:
        if name == "base":  # the untrained base policy (the reference row): nothing was trained
            assert model_dir == cfg.base_policy
            return {"greedy": 0.25, "sampled": 0.125}
        done = json.loads((Path(model_dir) / "done.json").read_text())
        return {"greedy": done["greedy"], "sampled": done["greedy"] / 2, "train": done}

    def prepare(self, cfg) -> PipelineData:
        self.prepared.append(cfg.seed)
        return fake_data()


def test_ablation_sweep_caches_and_writes_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMethods(monkeypatch, ["step_dpo", "rft"], lambda m, n, w, s: 0.3 + 0.01 * w + 0.01 * s)
    acfg = AblationConfig(output_dir=str(tmp_path / "abl"), seeds=[0, 1], pipeline={"show_progress": False},
                          sweeps=[SweepSpec("step_dpo", "per_problem", [0, 1, 2]),
                                  SweepSpec("step_dpo", "ratio", [0, 1]),
                                  SweepSpec("not_a_method", "per_problem", [1], optional=True)])
    assert run_ablation(acfg, prepare=fake.prepare, log=lambda s: None, report_only=True) == []
    rows = run_ablation(acfg, prepare=fake.prepare, log=lambda s: None)
    # per seed: one shared volume-0 run (rft) + per_problem 1, 2 + ratio 1
    assert sorted(n for n, _ in fake.calls) == ["rft"] * 2 + ["step_dpo"] * 6
    assert fake.prepared == [0, 1]
    assert all(o["pairs"]["negatives_per_problem"] is None for n, o in fake.calls if n == "step_dpo")
    assert len(rows) == 12
    ref = [r for r in rows if r["kind"] == "reference"]
    assert [(r["method"], r["seed"], r["greedy"]) for r in ref] == [("base", 0, 0.25), ("base", 1, 0.25)]
    rows = [r for r in rows if r["kind"] != "reference"]
    zero = [r for r in rows if r["volume"] == 0]
    assert {r["trained_as"] for r in zero} == {"rft"} and {r["rows"] for r in zero} == {0}
    r2 = next(r for r in rows if r["kind"] == "per_problem" and r["volume"] == 2 and r["seed"] == 1)
    assert r2["rows"] == 12 and r2["greedy"] == pytest.approx(0.3 + 0.12 + 0.01)  # 2 negatives x 6 problems

    fake.calls.clear()
    again = run_ablation(acfg, prepare=fake.prepare, log=lambda s: None)
    assert fake.calls == [], "a rerun must reuse every finished point"
    assert run_ablation(acfg, prepare=fake.prepare, log=lambda s: None, report_only=True) == again
    assert [(r["kind"], r["volume"], r["seed"], r["greedy"]) for r in again if r["kind"] != "reference"] == \
        [(r["kind"], r["volume"], r["seed"], r["greedy"]) for r in rows]

    paths = write_ablation_outputs(again, tmp_path / "abl")
    with paths["csv"].open() as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 12 and lines[0]["method"] == "base" and set(lines[0]) == set(ablation.CSV_FIELDS)
    table = paths["table"].read_text()
    assert "| step_dpo | per_problem | 2 | step_dpo | 0,1 | 42.5 ± 0.7 | 42.0, 43.0 |" in table
    assert "| base | reference | 0 | base | 0,1 | 25.0 ± 0.0 | 25.0, 25.0 | 12.5 ± 0.0 |" in table
    assert "plot_reference" not in paths  # a dashed level inside each plot, not a plot of its own
    for kind in ("per_problem", "ratio"):
        assert paths[f"plot_{kind}"].read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "abl" / "ablation_config.yaml").exists()


def test_claim_locks_and_takes_over_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    lock = tmp_path / "x" / "point.lock"
    lock.parent.mkdir()
    lock.write_text(str(os.getppid()))  # held by a live process
    assert not ablation.claim(lock)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(dead.stdout.strip())  # its process is gone
    assert ablation.claim(lock) and lock.read_text() == str(os.getpid())
    # a point held by another live worker is skipped (no training, no row) and trained by the next run
    fake = FakeMethods(monkeypatch, ["step_dpo", "rft"], lambda m, n, w, s: 0.5)
    acfg = AblationConfig(output_dir=str(tmp_path / "abl"), seeds=[0], pipeline={"show_progress": False},
                          sweeps=[SweepSpec("step_dpo", "per_problem", [0, 1])])
    held = tmp_path / "abl" / "points" / "step_dpo__per_problem_1" / "seed0" / "point.lock"
    held.parent.mkdir(parents=True)
    held.write_text(str(os.getppid()))
    rows = run_ablation(acfg, prepare=fake.prepare, log=lambda s: None)
    assert [(r["kind"], r["volume"]) for r in rows] == [("reference", 0), ("per_problem", 0)]
    assert [n for n, _ in fake.calls] == ["rft"]
    held.unlink()
    again = run_ablation(acfg, prepare=fake.prepare, log=lambda s: None)
    assert [r["volume"] for r in again if r["kind"] == "per_problem"] == [0, 1]


def test_missing_method_is_an_error(tmp_path: Path) -> None:
    acfg = AblationConfig(output_dir=str(tmp_path), sweeps=[SweepSpec("nope", "per_problem", [1])])
    with pytest.raises(ValueError, match="nope"):
        run_ablation(acfg, prepare=lambda cfg: fake_data(), log=lambda s: None)
    with pytest.raises(ValueError, match="ascending"):
        SweepSpec("step_dpo", "per_problem", [2, 1])


def test_config_from_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("seeds: [0]\nsweeps:\n  - {method: step_dpo, kind: per_problem, values: [0, 1]}\n")
    acfg = AblationConfig.from_yaml(path, output_dir=str(tmp_path / "o"))
    assert acfg.sweeps[0].values == [0, 1] and acfg.pipeline_cfg().output_dir == str(tmp_path / "o" / "data")
    path.write_text("seedz: [0]\n")
    with pytest.raises(ValueError, match="a.yaml.*seedz"):
        AblationConfig.from_yaml(path)


def test_data_multiplier_hand_made() -> None:
    curve = [(100, 0.2), (200, 0.3), (400, 0.5), (800, 0.6)]
    m = data_multiplier(curve, 100, 0.4)  # halfway between 200 and 400 in log n: sqrt(200 * 400) = 282.84
    assert m.status == "interpolated" and m.value == pytest.approx(math.sqrt(200 * 400) / 100)
    assert m.text == "2.83×"
    assert data_multiplier(curve, 100, 0.5) == Multiplier(4.0, "interpolated")  # exact grid point
    assert data_multiplier(curve, 200, 0.35).value == pytest.approx(2 ** 0.25)  # t = 0.25 of one doubling
    low = data_multiplier(curve, 100, 0.1)  # the reference at the same size is already better
    assert low == Multiplier(1.0, "at_most") and low.text.startswith("< 1×")
    assert data_multiplier(curve, 50, 0.2).text == "≤ 2.00×"
    high = data_multiplier(curve, 100, 0.7)
    assert high == Multiplier(8.0, "not_reached") and high.text == "> 8.00× (not reached)"
    assert math.isinf(high.sort_value)


def test_multiplier_rows_seeds_and_bootstrap() -> None:
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        for n, a in ((100, 0.2), (200, 0.3), (400, 0.5), (800, 0.6)):
            rows.append({"method": "sft_more", "seed": seed, "volume": n, "greedy": a + shift})
        rows.append({"method": "step_dpo", "seed": seed, "volume": 100, "greedy": 0.5})
    (m,) = multiplier_rows(rows, "step_dpo", ["sft_more"], bootstrap=200)
    # mean reference curve: 0.25, 0.35, 0.55, 0.65 → 0.5 lies 3/4 of the way from 200 to 400
    assert m["multiplier"].value == pytest.approx(2 * 2 ** 0.75)
    assert [x.value for x in m["per_seed"]] == pytest.approx([4.0, 2 * 2 ** 0.5])  # seed 1: 0.5 between 0.4 and 0.6
    lo, hi = m["bootstrap_90"]
    assert lo == pytest.approx(2 * 2 ** 0.5) and hi == pytest.approx(4.0)
    assert m["reference_acc_same_n"] == pytest.approx(0.25)


def test_efficiency_curve_caches_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # accuracy grows by 0.1 per doubling of problems; step_dpo is one doubling ahead of rft, two of sft
    ahead = {"sft_more": 0.0, "rft": 0.1, "step_dpo": 0.2}
    fake = FakeMethods(monkeypatch, list(ahead), lambda m, n, w, s: 0.1 * math.log2(n) + ahead[m])
    acfg = AblationConfig(output_dir=str(tmp_path / "eff"), seeds=[0, 1], n_problems=[1, 2, 4],
                          method_sizes={"step_dpo": [1, 2]}, pipeline={"show_progress": False}, bootstrap=50)
    assert acfg.pipeline_cfg().n_prompts == 4
    rows = run_efficiency(acfg, prepare=fake.prepare)
    assert len(fake.calls) == 16 and len(rows) == 18  # + the base reference of each seed
    assert sum(r["kind"] == "reference" for r in rows) == 2
    assert {r["volume"] for r in rows if r["method"] == "step_dpo"} == {1, 2}
    assert {r["rows"] for r in rows if r["volume"] == 1} == {len(_wrong_ids(subsample_problems(fake_data(), 1)))}
    fake.calls.clear()
    assert run_efficiency(acfg, prepare=fake.prepare) == rows and fake.calls == []
    out = write_efficiency_outputs(rows, acfg, tmp_path / "eff")
    by = {(m["reference"], m["n_problems"]): m["multiplier"] for m in out["multiplier_rows"]}
    assert by[("rft", 1.0)].status == "interpolated" and by[("rft", 1.0)].value == pytest.approx(2.0)
    assert by[("sft_more", 1.0)].status == "interpolated" and by[("sft_more", 1.0)].value == pytest.approx(4.0)
    assert by[("sft_more", 2.0)] == Multiplier(2.0, "not_reached")
    assert "> 2.00× (not reached)" in out["multiplier"].read_text()
    assert out["plot"].read_bytes()[:8] == PNG_MAGIC
    assert json.loads((tmp_path / "eff" / "multiplier.json").read_text())[0]["multiplier"]["text"] == "4.00×"


@pytest.mark.slow
def test_ablation_end_to_end_real_pipeline(tmp_path: Path, trained_policy_dir: Path) -> None:
    """The real pipeline (sampling, verification, MC labels, RFT / per-step DPO training, evaluation), tiny."""
    over = {"base_policy": str(trained_policy_dir), "n_prompts": 16, "n_test": 16, "samples_per_prompt": 4,
            "threads": 1}
    acfg = AblationConfig(output_dir=str(tmp_path / "abl"), pipeline_config="recipes/configs/step_rl/tiny_test.yaml",
                          pipeline=over, seeds=[0], sweeps=[SweepSpec("step_dpo", "per_problem", [0, 1, 4])])
    rows = run_ablation(acfg, log=lambda s: None)
    assert [(r["trained_as"], r["volume"]) for r in rows] == [("base", 0), ("rft", 0), ("step_dpo", 1),
                                                               ("step_dpo", 4)]
    assert all(0.0 <= r["greedy"] <= 1.0 for r in rows)
    assert rows[0]["kind"] == "reference" and rows[0]["model_dir"] == str(trained_policy_dir)
    assert rows[2]["rows"] <= 16 and rows[2]["rows"] <= rows[3]["rows"]  # at most one pair per problem at volume 1
    stamps = {p: p.stat().st_mtime for p in (tmp_path / "abl" / "points").rglob("done.json")}
    assert len(stamps) == 3
    assert run_ablation(acfg, log=lambda s: None) == rows
    assert {p: p.stat().st_mtime for p in stamps} == stamps  # nothing retrained
    paths = write_ablation_outputs(rows, tmp_path / "abl")
    assert paths["plot_per_problem"].read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@pytest.mark.parametrize("task,knobs,n_train,epochs", [
    # one-node arms: the path is a copy of t, learned in ~10 s (two-node arms need far longer); mixed right / wrong
    ("path_star", {"arms": 2, "arm_length": 1, "min_id": 0, "max_id": 9}, 300, 40),
    ("multipath", {"n_terms": 2, "digits": 1, "distractor_prob": 0.3}, 2000, 3),
])
def test_ablation_accepts_the_other_embedded_tasks(
    tmp_path: Path, task: str, knobs: dict, n_train: int, epochs: int
) -> None:
    """The ablation runs on either second embedded task by config alone (the pipeline's task / task_kwargs)."""
    from negrl.experiments.base_policy import BasePolicyConfig, base_sft_args, train_base_policy

    base = tmp_path / "base"
    train_base_policy(
        BasePolicyConfig(task=task, task_kwargs=knobs, n_train=n_train, n_test=16, max_new_tokens=40, eval_samples=1,
                         threads=1),
        base_sft_args(str(base), num_train_epochs=epochs, warmup_steps=20, disable_tqdm=True),
    )
    over = {"base_policy": str(base), "task": task, "task_kwargs": knobs, "n_prompts": 16, "n_test": 16,
            "samples_per_prompt": 4, "max_new_tokens": 40, "threads": 1}
    acfg = AblationConfig(output_dir=str(tmp_path / "abl"), pipeline_config="recipes/configs/step_rl/tiny_test.yaml",
                          pipeline=over, seeds=[0], sweeps=[SweepSpec("step_dpo", "per_problem", [0, 2])])
    rows = run_ablation(acfg, log=lambda s: None)
    assert [(r["trained_as"], r["volume"]) for r in rows] == [("base", 0), ("rft", 0), ("step_dpo", 2)]
    assert all(0.0 <= r["greedy"] <= 1.0 for r in rows)
    data = tmp_path / "abl" / "data" / "seed0"
    problems = [json.loads(line) for f in sorted((data / "problems").glob("*.jsonl")) for line in f.open()]
    assert problems and {p["domain"] for p in problems} == {task}
