"""The path-star task: generator, splits, exact verifier and step checker, and a tiny SFT → generate → verify run."""

from __future__ import annotations

import os

import pytest

from negrl.records import Problem
from negrl.tasks import check_steps, first_error, get_task, path_star
from negrl.tasks.path_star import PathStarConfig
from negrl.verifiers import verify


def _hand_problem() -> Problem:
    """s=3 with arms 3>1>4, 3>7>5, 3>2>8; target 4 (arm 0)."""
    cfg = PathStarConfig(arms=3, arm_length=2, min_id=0, max_id=9)
    arms = [[1, 4], [7, 5], [2, 8]]
    edges = [[7, 5], [3, 1], [2, 8], [1, 4], [3, 7], [3, 2]]
    meta = {"start": 3, "target": 4, "arms": arms, "target_arm": 0, "edges": edges,
            "graph": path_star.graph_key(3, arms)}
    prompt = "G: 7>5 3>1 2>8 1>4 3>7 3>2 | 3-4\n"
    p = Problem(problem_id="star:hand", domain="path_star", prompt=prompt, answer="4", source=cfg.name, meta=meta)
    p.solution = path_star.gold_solution(p)
    return p


def test_gold_and_prompt_format():
    p = _hand_problem()
    assert p.solution == "1\n4\nAnswer: 4"
    task = get_task("path_star", arms=4, arm_length=3, max_id=49)
    q = task.generate_problems(1, seed=0)[0]
    s, t = q.meta["start"], q.meta["target"]
    assert q.prompt.startswith("G: ") and q.prompt.endswith(f" | {s}-{t}\n")
    edges = q.prompt[3:].split(" | ")[0].split()
    assert len(edges) == 4 * 3 and len(set(edges)) == 12
    arm = q.meta["arms"][q.meta["target_arm"]]
    assert q.solution.split("\n")[:-1] == [str(n) for n in arm] and arm[-1] == t
    # every node id is distinct and inside the id range
    nodes = [s] + [n for a in q.meta["arms"] for n in a]
    assert len(set(nodes)) == 13 and all(0 <= n <= 49 for n in nodes)


def test_generator_is_deterministic_and_graphs_distinct():
    task = get_task("path_star", arms=3, arm_length=2, max_id=9)
    a = task.generate_problems(200, seed=5)
    b = task.generate_problems(200, seed=5)
    c = task.generate_problems(200, seed=6)
    assert [p.to_row() for p in a] == [p.to_row() for p in b]
    assert [p.problem_id for p in a] != [p.problem_id for p in c]
    assert len({p.meta["graph"] for p in a}) == 200


def test_splits_never_share_a_graph():
    task = get_task("path_star", arms=2, arm_length=2, max_id=7)  # 6,720 graphs: collisions are likely
    train, test = task.make_splits(1500, 300, seed=0)
    assert len(train) == 1500 and len(test) == 300
    assert not {p.meta["graph"] for p in train} & {p.meta["graph"] for p in test}
    # excluding by problem id excludes the whole graph (the pipeline passes problem ids)
    more = task.generate_problems(300, seed=7, exclude={p.problem_id for p in test})
    assert not {p.meta["graph"] for p in more} & {p.meta["graph"] for p in test}


def test_graph_key_ignores_edge_order_and_arm_order():
    assert path_star.graph_key(3, [[1, 4], [7, 5]]) == path_star.graph_key(3, [[7, 5], [1, 4]])
    assert path_star.graph_key(3, [[1, 4], [7, 5]]) != path_star.graph_key(3, [[1, 5], [7, 4]])


def test_verifier_valid_invalid_and_wrong_arm():
    p = _hand_problem()
    assert verify(p, "1\n4\nAnswer: 4").correct is True
    assert verify(p, "1\n4\nAnswer: 4\n").correct is True
    wrong_arm = verify(p, "7\n5\nAnswer: 5")  # a valid path, but to the wrong leaf
    assert wrong_arm.correct is False and "not at the target" in wrong_arm.detail
    not_edge = verify(p, "1\n5\nAnswer: 5")  # 1>5 does not exist
    assert not_edge.correct is False and "not an edge" in not_edge.detail
    jump = verify(p, "4\nAnswer: 4")  # 3>4 is not an edge: skipping the arm node
    assert jump.correct is False and "not an edge" in jump.detail
    assert verify(p, "1\n4").correct is False  # no answer line
    assert verify(p, "1\n4\nAnswer: 5").correct is False
    assert verify(p, "x\n4\nAnswer: 4").correct is False
    assert verify(p, "").correct is False
    p.answer = None
    assert verify(p, "1\n4\nAnswer: 4").correct is None  # could not verify: None, never False


def test_check_steps_first_step_is_the_arm_choice():
    p = _hand_problem()
    assert check_steps(p, "1\n4\nAnswer: 4") == [True, True, True]
    assert check_steps(p, "7\n5\nAnswer: 5") == [False, False, False]  # wrong arm: the critical step is line 0
    assert first_error(p, "7\n5\nAnswer: 5") == 0
    assert check_steps(p, "1\n5\nAnswer: 5") == [True, False, False]  # right arm, then a non-edge
    assert check_steps(p, "1\n4\nAnswer: 8") == [True, True, False]
    assert check_steps(p, "1\n4\nAnswer: 4\n") == [True, True, True, True]  # trailing newline is harmless
    assert check_steps(p, "1\n4\nAnswer: 4\n9") == [True, True, True, False]  # an extra line is wrong
    assert first_error(p, "1\n4\nAnswer: 4") is None


def test_first_step_stats_clever_hans_diagnostic():
    p = _hand_problem()
    stats = path_star.first_step_stats([p] * 4, ["1\n4\nAnswer: 4", "1\n5\nAnswer: 5", "7\n5\nAnswer: 5", "2\n8"])
    assert stats["acc"] == pytest.approx(0.25)
    assert stats["first"] == pytest.approx(0.5)
    assert stats["later_given_first"] == pytest.approx(0.5)
    assert stats["chance"] == pytest.approx(1 / 3)


def test_config_validation():
    with pytest.raises(ValueError, match="fewer than"):
        PathStarConfig(arms=5, arm_length=2, min_id=0, max_id=9)
    with pytest.raises(ValueError, match="arms >= 2"):
        PathStarConfig(arms=1)
    with pytest.raises(ValueError, match="no knob"):
        get_task("path_star", depth=3)


def test_tiny_model_sft_generate_verify(tiny_model, char_tokenizer, tmp_path):
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft
    from negrl.verifiers import verify_rollouts

    task = get_task("path_star", arms=2, arm_length=2, max_id=9)
    train, test = task.make_splits(128, 8, seed=0)
    args = cpu_safe_sft_config(
        output_dir=str(tmp_path), learning_rate=1e-2, per_device_train_batch_size=32, num_train_epochs=2,
        logging_steps=1, disable_tqdm=True, seed=0,
    )
    trainer = train_sft(tiny_model, char_tokenizer, gold_dataset(train), args)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < losses[0]
    config = GenerationConfig(num_samples=2, temperature=1.0, max_new_tokens=16, seed=0, show_progress=False)
    rollouts = generate_rollouts(test, tiny_model, char_tokenizer, config)
    verdicts = verify_rollouts(test, rollouts)
    assert len(verdicts) == 16 and all(v.correct in (True, False) for v in verdicts)
    by_id = {p.problem_id: p for p in test}
    for r in rollouts:
        labels = check_steps(by_id[r.problem_id], r.completion)
        assert len(labels) == len(r.completion.split("\n"))

    from negrl.experiments.task_diagnostics import first_step_eval

    stats = first_step_eval(tiny_model, char_tokenizer, test, max_new_tokens=16, samples=2)
    assert stats["greedy"]["n"] == 8 and stats["sampled"]["n"] == 16
    assert 0.0 <= stats["greedy"]["acc"] <= stats["greedy"]["first"] <= 1.0


def test_export_checkpoint_copies_weights_and_splits(tmp_path):
    from negrl.experiments.task_diagnostics import checkpoint_dirs, export_checkpoint
    from negrl.io import read_stage, write_stage

    run = tmp_path / "run"
    for step in (200, 100):
        (run / f"checkpoint-{step}").mkdir(parents=True)
        (run / f"checkpoint-{step}" / "model.safetensors").write_text(str(step))
        (run / f"checkpoint-{step}" / "optimizer.pt").write_text("big")
    test = get_task("path_star", arms=2, arm_length=2, max_id=9).generate_problems(3, seed=0)
    write_stage(run / "problems" / "test", test, Problem)
    assert [s for s, _ in checkpoint_dirs(run)] == [100, 200]
    out = export_checkpoint(run, 200, tmp_path / "base")
    assert (out / "model.safetensors").read_text() == "200" and not (out / "optimizer.pt").exists()
    assert [p.problem_id for p in read_stage(out / "problems" / "test", Problem)] == [p.problem_id for p in test]
    with pytest.raises(FileNotFoundError, match="checkpoint-300"):
        export_checkpoint(run, 300, tmp_path / "x")


def test_probe_reuses_checkpoints_already_probed(tmp_path, monkeypatch):
    from negrl import modeling
    from negrl.experiments import task_diagnostics

    probed = []
    monkeypatch.setattr(modeling, "load_policy", lambda d, device="cpu": (str(d), None))
    monkeypatch.setattr(task_diagnostics, "first_step_eval",
                        lambda model, tok, problems, *a: probed.append(model) or {"greedy": {"n": float(len(problems))}})
    run = tmp_path / "run"
    for step in (100, 200):
        (run / f"checkpoint-{step}").mkdir(parents=True)
        (run / f"checkpoint-{step}" / "model.safetensors").write_text("weights")
    test = get_task("path_star", arms=2, arm_length=2, max_id=9).generate_problems(3, seed=0)
    mtime = (run / "checkpoint-100" / "model.safetensors").stat().st_mtime
    row = {"step": 100, "dir": "x", "weights_mtime": mtime, "greedy": {"acc": 0.5, "n": 3.0}, "sampled": {}}
    rows = task_diagnostics.probe_checkpoints(run, test, known=[row])
    assert rows[0] == row and rows[1]["step"] == 200 and probed == [str(run / "checkpoint-200")]
    task_diagnostics.probe_checkpoints(run, test[:2], known=[row])  # other problems: probed again
    assert probed[1:] == [str(run / "checkpoint-100"), str(run / "checkpoint-200")]
    os.utime(run / "checkpoint-100" / "model.safetensors", (mtime + 10, mtime + 10))  # retrained in place
    task_diagnostics.probe_checkpoints(run, test, known=rows)
    assert probed[3:] == [str(run / "checkpoint-100")]  # checkpoint 200 is unchanged: reused


def test_trajectory_plot_is_a_png(tmp_path):
    from negrl.experiments.task_diagnostics import plot_trajectory

    rows = [{"step": s, "greedy": {"first": f, "later_given_first": 1.0, "chance": 0.5}}
            for s, f in ((250, 0.3), (500, 0.5), (750, 0.7))] + [{"step": "final", "greedy": {}}]
    out = plot_trajectory(rows, tmp_path / "t.png", picked=500)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no checkpoint"):
        plot_trajectory(rows[-1:], tmp_path / "u.png")


def test_audit_step_credit_against_the_exact_checker(tmp_path):
    import json

    from negrl.experiments.task_diagnostics import audit_step_credit
    from negrl.io import write_stage
    from negrl.records import Rollout, StepLabels
    from negrl.steps.segment import split_lines

    p = _hand_problem()
    wrong = {"w0": "7\n5\nAnswer: 5", "w1": "1\n8\nAnswer: 8", "w2": "2\n8\nAnswer: 8", "w3": "1\n4\nAnswer: 5"}
    rollouts = [Rollout(rollout_id=k, problem_id=p.problem_id, completion=c, sample_index=i)
                for i, (k, c) in enumerate(wrong.items())]
    labels = []
    # exact first errors 0, 1, 0, 2; MC: agrees, earlier, finds no error (w3 has no MC label)
    for r, mc_first in zip(rollouts[:3], (0, 0, None)):
        steps = split_lines(r.completion)
        labels.append(StepLabels(rollout_id=r.rollout_id, steps=steps, values=[0.0] * len(steps),
                                 labels=[None] * len(steps), first_error=mc_first, source="mc"))
    write_stage(tmp_path / "problems", [p], Problem)
    write_stage(tmp_path / "rollouts", rollouts, Rollout)
    write_stage(tmp_path / "step_labels", labels, StepLabels)
    rows = [{"problem_id": p.problem_id, "rejected_id": "w0", "chosen": p.solution, "rejected": "7\n",
             "rejected_eos": False, "critical_step": 0},
            {"problem_id": p.problem_id, "rejected_id": "w1", "chosen": "7\n5\nAnswer: 5", "rejected": "1\n",
             "rejected_eos": True, "critical_step": 0},  # wrong chosen, cut too early, EOS, wrong critical step
            {"problem_id": p.problem_id, "rejected_id": "w3", "chosen": p.solution, "rejected": "1\n4\nAnswer: 5",
             "rejected_eos": True, "critical_step": 2}]  # the wrong line is the last: the whole solution, with EOS
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "step_dpo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    audit = audit_step_credit(tmp_path)
    assert audit["mc"] == {"n": 3, "agree": 1, "mc_earlier": 1, "mc_later": 0, "mc_none": 1}
    assert audit["pairs"] == {"n": 3, "chosen_correct": 2, "rejected_cut_at_exact_error": 2,
                              "eos_iff_whole_solution": 2, "critical_step_exact": 2}


def test_stored_results_follow_the_config_order(tmp_path):
    import json

    from negrl.experiments.task_diagnostics import stored_results

    (tmp_path / "eval").mkdir()
    for m in ("awr", "base", "rft", "extra"):
        (tmp_path / "eval" / f"{m}.json").write_text(json.dumps({"method": m}))
    got = stored_results(tmp_path, ["base", "rft", "step_dpo", "awr"])
    assert list(got) == ["base", "rft", "awr", "extra"] and got["rft"] == {"method": "rft"}
