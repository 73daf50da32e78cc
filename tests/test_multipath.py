"""Multi-path arithmetic: alternative orders verify, distractors are spurious, wrong steps are caught; tiny SFT run."""

from __future__ import annotations

import pytest

from negrl.records import Problem
from negrl.tasks import check_steps, first_error, get_task, multipath
from negrl.tasks.multipath import MultipathConfig
from negrl.verifiers import verify


def _hand_problem() -> Problem:
    """(7+5)-(3*2)+(9-4) = 11: terms 12, 6, 5; combinations 12-6=6, 6+5=11."""
    nodes = multipath._tree([(7, "+", 5), (3, "*", 2), (9, "-", 4)], ["-", "+"])
    meta = {"nodes": nodes, "order": [0, 1, 3, 2, 4], "distractor": [3, "6*1=6"]}
    p = Problem(problem_id="multipath:hand", domain="multipath", prompt="Q: (7+5)-(3*2)+(9-4)\n", answer="11",
                source="multipath:test", meta=meta)
    p.solution = multipath.gold_solution(p)
    return p


def test_hand_tree_and_gold():
    p = _hand_problem()
    assert [n["value"] for n in p.meta["nodes"]] == [12, 6, 5, 6, 11]
    assert p.solution == "7+5=12\n3*2=6\n12-6=6\n6*1=6\n9-4=5\n6+5=11\nAnswer: 11"
    assert multipath.classify_steps(p, p.solution) == [
        "progress", "progress", "progress", "spurious", "progress", "progress", "answer"
    ]
    assert multipath.spurious_flags(p, p.solution) == [False, False, False, True, False, False, False]
    assert check_steps(p, p.solution) == [True] * 7
    assert verify(p, p.solution).correct is True


def test_alternative_orders_all_verify_and_are_all_progress():
    p = _hand_problem()
    alts = multipath.alternative_solutions(p)
    # 5 nodes, 3 terms: the topological orders of ((t0 - t1) + t2) number 8, each with and without + / * swaps.
    assert len(alts) == 16 and len(set(alts)) == 16
    assert "9-4=5\n2*3=6\n5+7=12\n12-6=6\n5+6=11\nAnswer: 11" in alts
    for text in alts:
        assert verify(p, text).correct is True
        kinds = multipath.classify_steps(p, text)
        assert kinds[:-1] == ["progress"] * 5 and kinds[-1] == "answer"


def test_spurious_and_wrong_steps():
    p = _hand_problem()
    text = "7+5=12\n12+0=12\n7+5=12\n1*12=12\n3*2=6\n12-6=6\n9-4=5\n6+5=11\nAnswer: 11"
    assert multipath.classify_steps(p, text) == [
        "progress", "spurious", "spurious", "spurious", "progress", "progress", "progress", "progress", "answer"
    ]
    assert verify(p, text).correct is True  # a positive with spurious steps
    # false arithmetic, a computation the expression does not ask for, an unparseable line
    assert multipath.classify_steps(p, "7+5=13") == ["wrong"]
    assert multipath.classify_steps(p, "7+3=10") == ["wrong"]  # true, but not a node of the tree
    assert multipath.classify_steps(p, "seven") == ["wrong"]
    assert multipath.classify_steps(p, "3-2=1") == ["wrong"]  # the term is 3*2, not 3-2
    assert multipath.classify_steps(p, "5-9=-4") == ["wrong"]  # "-" does not commute
    wrong = "7+5=12\n3*2=5\n12-5=7\n9-4=5\n7+5=12\nAnswer: 12"
    assert check_steps(p, wrong) == [True, False, False, False, False, False]  # errors propagate
    assert first_error(p, wrong) == 1
    assert verify(p, wrong).correct is False
    assert multipath.classify_steps(p, "7+5=12\nAnswer: 11\n\nx") == ["progress", "answer", "spurious", "wrong"]


def test_generated_problems_gold_verifies_and_distractor_rate():
    task = get_task("multipath", n_terms=3, distractor_prob=0.5)
    problems = task.generate_problems(400, seed=0)
    n_spurious = 0
    for p in problems:
        assert verify(p, p.solution).correct is True
        kinds = multipath.classify_steps(p, p.solution)
        assert kinds.count("progress") == 5 and kinds[-1] == "answer"
        assert all(n["value"] >= 1 for n in p.meta["nodes"])
        n_spurious += kinds.count("spurious")
    assert 150 < n_spurious < 250  # one distractor in about half of the gold solutions
    orders = {tuple(p.meta["order"]) for p in problems}
    assert len(orders) > 4  # gold solutions use several different valid orders


def test_generator_determinism_and_splits():
    task = get_task("multipath", n_terms=2, distractor_prob=0.3)
    a, b = task.generate_problems(100, seed=1), task.generate_problems(100, seed=1)
    assert [p.to_row() for p in a] == [p.to_row() for p in b]
    train, test = task.make_splits(500, 100, seed=0)
    assert not {p.problem_id for p in train} & {p.problem_id for p in test}
    fixed = get_task("multipath", n_terms=2, distractor_prob=0.0, shuffle_order=False).generate_problems(50, seed=0)
    assert all(p.meta["order"] == [0, 1, 2] and p.meta["distractor"] is None for p in fixed)


def test_config_validation():
    with pytest.raises(ValueError, match="top_ops"):
        MultipathConfig(top_ops="*")
    with pytest.raises(ValueError, match="distractor_prob"):
        MultipathConfig(distractor_prob=1.5)
    with pytest.raises(ValueError, match="n_terms"):
        MultipathConfig(n_terms=1)


def test_tiny_model_sft_generate_verify(tiny_model, char_tokenizer, tmp_path):
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft
    from negrl.verifiers import verify_rollouts

    task = get_task("multipath", n_terms=2, distractor_prob=0.5)
    train, test = task.make_splits(128, 8, seed=0)
    args = cpu_safe_sft_config(
        output_dir=str(tmp_path), learning_rate=1e-2, per_device_train_batch_size=32, num_train_epochs=2,
        logging_steps=1, disable_tqdm=True, seed=0,
    )
    trainer = train_sft(tiny_model, char_tokenizer, gold_dataset(train), args)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < losses[0]
    config = GenerationConfig(num_samples=2, temperature=1.0, max_new_tokens=48, seed=0, show_progress=False)
    rollouts = generate_rollouts(test, tiny_model, char_tokenizer, config)
    verdicts = verify_rollouts(test, rollouts)
    assert len(verdicts) == 16 and all(v.correct in (True, False) for v in verdicts)
    by_id = {p.problem_id: p for p in test}
    for r in rollouts:
        kinds = multipath.classify_steps(by_id[r.problem_id], r.completion)
        assert len(kinds) == len(r.completion.split("\n")) and set(kinds) <= set(multipath.STEP_KINDS)


def test_spurious_step_advantages_on_hand_labels():
    from negrl.experiments.task_diagnostics import spurious_rate, spurious_step_advantages
    from negrl.records import Rollout, StepLabels, Verdict
    from negrl.steps.segment import segment

    p = _hand_problem()
    pos = "7+5=12\n12+0=12\n3*2=6\n12-6=6\n9-4=5\n6+5=11\nAnswer: 11"  # one spurious step (line 1)
    neg = "7+5=12\n3*2=5\nAnswer: 7"
    rollouts = [Rollout(rollout_id="a", problem_id=p.problem_id, completion=pos),
                Rollout(rollout_id="b", problem_id=p.problem_id, completion=neg)]
    verdicts = [verify(p, pos, "a"), verify(p, neg, "b")]
    assert [v.correct for v in verdicts] == [True, False]
    steps = segment(pos)
    assert len(steps) == 7
    # values: the spurious step loses value (A = -0.25), progress steps gain or keep it, the answer line ends at 1
    values = [0.75, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0]
    labels = [StepLabels(rollout_id="a", steps=steps, values=values, labels=[True] * 7, first_error=None,
                         source="mc", prefix_value=0.5)]
    stats = spurious_step_advantages([p], rollouts, verdicts, labels)
    assert stats["positives_with_spurious"] == 1
    assert stats["spurious"] == {"n": 1, "mean_advantage": -0.25, "frac_negative": 1.0, "frac_nonpositive": 1.0}
    assert stats["progress"]["n"] == 5 and stats["progress"]["frac_negative"] == 0.0
    assert stats["progress"]["mean_advantage"] == pytest.approx((0.25 + 0 + 0.25 + 0 + 0.25) / 5)
    assert stats["argmin_is_spurious"] == 1.0 and stats["argmin_chance"] == pytest.approx(1 / 6)
    rate = spurious_rate([p], rollouts, [Verdict(rollout_id="a", correct=True), Verdict(rollout_id="b", correct=False)])
    assert rate == {"positives": 1, "positives_with_spurious": 1, "negatives": 1, "negatives_with_spurious": 0}
