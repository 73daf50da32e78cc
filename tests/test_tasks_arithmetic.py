import pytest

from negrl.records import Problem
from negrl.tasks import arithmetic, check_steps, first_error, get_task
from negrl.verifiers import verify


def test_generation_is_deterministic_and_splits_are_disjoint():
    task = get_task("arithmetic")
    a_train, a_test = task.make_splits(300, 100, seed=3)
    b_train, b_test = task.make_splits(300, 100, seed=3)
    assert [p.problem_id for p in a_train] == [p.problem_id for p in b_train]
    assert [p.problem_id for p in a_test] == [p.problem_id for p in b_test]
    assert not {p.problem_id for p in a_train} & {p.problem_id for p in a_test}
    assert len({p.problem_id for p in a_train}) == 300
    c_train, _ = task.make_splits(300, 100, seed=4)
    assert [p.problem_id for p in c_train] != [p.problem_id for p in a_train]


@pytest.mark.parametrize("knobs", [{}, {"min_steps": 2, "max_steps": 6, "digits": 1, "max_value": 99}, {"ops": "+-"}])
def test_gold_solutions_verify_and_every_step_checks(knobs):
    task = get_task("arithmetic", **knobs)
    cfg = task.config
    for p in task.generate_problems(200, seed=0):
        assert verify(p, p.solution).correct is True
        assert all(check_steps(p, p.solution))
        assert cfg.min_steps <= len(p.meta["ops"]) <= cfg.max_steps
        assert all(0 <= v <= cfg.max_value for v in p.meta["values"])
        assert set(p.meta["ops"]) <= set(cfg.ops) | {"-"}
        assert eval(p.prompt[3:].strip()) == int(p.answer)  # the prompt's expression evaluates to the gold answer


def _problem() -> Problem:
    # ((38-22)*5)*4 built by hand
    meta = {"operands": [38, 22, 5, 4], "ops": ["-", "*", "*"], "values": [16, 80, 320]}
    p = Problem(problem_id="arith:t", domain="arithmetic", prompt="Q: ((38-22)*5)*4\n", answer="320", meta=meta)
    assert arithmetic.gold_solution(p) == "38-22=16\n16*5=80\n80*4=320\nAnswer: 320"
    return p


@pytest.mark.parametrize(
    "completion, labels, first",
    [
        ("38-22=16\n16*5=80\n80*4=320\nAnswer: 320", [True, True, True, True], None),
        ("38-22=16\n16*5=80\n80*4=320\nAnswer: 320\n", [True, True, True, True, True], None),
        ("38-22=16\n16*5=90\n90*4=360\nAnswer: 360", [True, False, False, False], 1),
        ("38-22=14\n14*5=70\n70*4=280\nAnswer: 280", [False, False, False, False], 0),
        ("38-22=16\n16*4=64\n64*5=320\nAnswer: 320", [True, False, False, False], 1),  # right answer, wrong order
        ("38-22=16\n16*5=80\n80*4=320\nAnswer: 321", [True, True, True, False], 3),
        ("38-22=16\n16*5=80\nAnswer: 80", [True, True, False], 2),  # dropped a step
        ("38-22=16\n16*5=80\n80*4=320\nAnswer: 320\nextra", [True, True, True, True, False], 4),
    ],
)
def test_exact_step_checker(completion, labels, first):
    p = _problem()
    assert check_steps(p, completion) == labels
    assert first_error(p, completion) == first


def test_verifier_reads_last_answer_line_and_handles_missing():
    p = _problem()
    assert verify(p, "Answer: 1\nAnswer: 320").correct is True
    v = verify(p, "38-22=16")
    assert v.correct is False and v.extracted is None and "no 'Answer:'" in v.detail


def test_bad_knobs_raise_clear_errors():
    with pytest.raises(ValueError, match="no knob"):
        get_task("arithmetic", depth=3)
    with pytest.raises(ValueError, match="unknown task"):
        get_task("chess")
    with pytest.raises(ValueError, match="min_steps"):
        get_task("arithmetic", min_steps=4, max_steps=2)
