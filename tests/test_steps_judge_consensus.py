"""Judge prompts and parsing (well-formed and garbage), the oracle judge, consensus truth tables, agreement."""

from __future__ import annotations

import pytest

from negrl.records import Problem, Rollout, Step, StepLabels
from negrl.steps.consensus import (
    agreement,
    agreement_table,
    cohen_kappa,
    combine,
    combine_labels,
    combine_step,
    first_error_metrics,
)
from negrl.steps.judge import OracleJudge, StepJudge, build_judge_prompt, parse_judge_output


P = Problem(problem_id="p", domain="arithmetic", prompt="Q: (3+4)*2\n", answer="14",
            meta={"operands": [3, 4, 2], "ops": ["+", "*"], "values": [7, 14]})


def test_prompt_has_rules_and_numbered_steps():
    prompt = build_judge_prompt("(3+4)*2", ["3+4=7\n", "7*2=15\n", "Answer: 15"])
    assert "Error propagation" in prompt and "Error termination" in prompt
    assert prompt.endswith("Problem: (3+4)*2\nStep 1: 3+4=7\nStep 2: 7*2=15\nStep 3: Answer: 15\nVerdict:\n")


@pytest.mark.parametrize(
    "text, labels, first",
    [
        ("Step 1: correct\nStep 2: incorrect\nStep 3: incorrect\nFirst wrong step: 2", [True, False, False], 1),
        ("**Step 1**: Correct ✓\n- Step 2 is WRONG\n3. not correct", [True, False, False], 1),
        ("1) right\n2) right\n3) right", [True, True, True], None),
        ("Step 1: 3+4=7 correct\nStep 2: no errors\nStep 3: error", [True, True, False], 2),
        ("The first wrong step is step 2.", [True, False, None], 1),
        ("First wrong step: none", [True, True, True], None),
        ("All steps are correct.", [True, True, True], None),
        ("Step 2: incorrect", [None, False, None], None),  # step 1 unknown → first error unknown
        ("Step 1: correct\nStep 1: wrong\nStep 9: wrong", [None, None, None], None),  # conflict; out of range
        ("", [None, None, None], None),
        ("Step 1: correct\nStep 2: wrong\nFirst wrong step: 2\nProblem: 1+1\nStep 2: correct", [True, False, None], 1),
        ("1+2=3\n3*4=12\nAnswer: 12", [None, None, None], None),  # a policy-style non-answer
        ("%%% )) Step : ??\n<eos> ~~~", [None, None, None], None),
    ],
)
def test_parse_judge_output(text, labels, first):
    assert parse_judge_output(text, 3) == (labels, first)


class FakeJudge(StepJudge):
    def __init__(self, answers):
        self.answers = answers
        self.prompts = []

    def complete(self, prompts):
        self.prompts += prompts
        return self.answers[: len(prompts)]


def test_judge_label_records_and_unparseable_is_none():
    rollouts = [Rollout(rollout_id="a", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15"),
                Rollout(rollout_id="b", problem_id="p", completion="3+4=7\n7*2=14\nAnswer: 14")]
    judge = FakeJudge(["Step 1: correct\nStep 2: wrong\nStep 3: wrong", "I think it is fine?"])
    a, b = judge.label([P], rollouts)
    assert a.source == "judge" and a.labels == [True, False, False] and a.first_error == 1
    assert a.values == [1.0, 0.0, 0.0]
    assert b.labels == [None, None, None] and b.first_error is None and b.detail.startswith("unparseable")
    assert "Problem: (3+4)*2" in judge.prompts[0]


def test_oracle_judge_matches_exact_checker_and_merged_steps():
    r = Rollout(rollout_id="a", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15\n")
    (lab,) = OracleJudge().label([P], [r])
    assert lab.source == "oracle" and lab.labels == [True, False, False] and lab.first_error == 1
    (lab,) = OracleJudge().label([P], [r], max_steps=2)  # "3+4=7\n7*2=15\n" + "Answer: 15\n"
    assert [s.text for s in lab.steps] == ["3+4=7\n7*2=15\n", "Answer: 15\n"] and lab.labels == [False, False]
    good = Rollout(rollout_id="g", problem_id="p", completion="3+4=7\n7*2=14\nAnswer: 14")
    assert OracleJudge().label([P], [good])[0].labels == [True, True, True]


T, F, N = True, False, None


@pytest.mark.parametrize(
    "a, b, and_, or_, vote",
    [(T, T, T, T, T), (T, F, F, T, N), (F, T, F, T, N), (F, F, F, F, F),
     (T, N, N, T, T), (F, N, F, N, F), (N, N, N, N, N)],
)
def test_consensus_truth_tables(a, b, and_, or_, vote):
    assert combine_step([a, b], "and") is and_
    assert combine_step([a, b], "or") is or_
    assert combine_step([a, b], "vote") is vote


def test_vote_majority_and_unknown_mode():
    assert combine_step([T, T, F], "vote") is True and combine_step([F, F, T, N], "vote") is False
    with pytest.raises(ValueError, match="consensus rule"):
        combine_step([T], "xor")


STEPS = [Step("x\n", 0, 2), Step("y\n", 2, 4), Step("z", 4, 5)]


def _lab(rid, labels, source, first=None):
    return StepLabels(rollout_id=rid, steps=STEPS, values=[None] * 3, labels=labels, first_error=first, source=source)


def test_combine_records_and_errors():
    c = combine([_lab("r", [T, T, F], "mc", 2), _lab("r", [T, F, F], "judge", 1)], "and")
    assert c.source == "consensus" and c.labels == [T, F, F] and c.first_error == 1
    assert c.values == [1.0, 0.5, 0.0] and c.detail == "and(mc+judge)"
    c = combine([_lab("r", [T, N, F], "mc"), _lab("r", [T, T, F], "judge")], "and")
    assert c.labels == [T, N, F] and c.first_error is None  # unknown step 1 → first error unknown
    other = StepLabels(rollout_id="r", steps=[Step("x\ny\nz", 0, 5)], values=[None], labels=[T], first_error=None,
                       source="prm")
    with pytest.raises(ValueError, match="segment it differently"):
        combine([_lab("r", [T, T, T], "mc"), other])
    both = combine_labels({"mc": [_lab("r", [T, T, F], "mc"), _lab("s", [T, T, T], "mc")],
                            "judge": [_lab("r", [T, T, T], "judge")]}, "or")
    assert [x.rollout_id for x in both] == ["r"] and both[0].labels == [T, T, T]


def test_agreement_and_kappa():
    assert cohen_kappa([T, T, F, F], [T, T, F, F]) == 1.0
    assert cohen_kappa([T, F, T, F], [T, T, F, F]) == 0.0
    assert cohen_kappa([T, T], [T, T]) is None
    a = [_lab("r", [T, T, F], "mc", 2), _lab("s", [T, F, F], "mc", 1)]
    b = [_lab("r", [T, F, F], "judge", 1), _lab("s", [T, F, N], "judge", 1)]
    stats = agreement(a, b)
    assert stats["rollouts"] == 2 and stats["steps_compared"] == 5
    assert stats["step_agreement"] == 4 / 5 and stats["first_error_agreement"] == 0.5
    # kappa: po = 0.8, pa = 3/5, pb = 2/5 → pe = 0.24 + 0.24 = 0.48 → (0.8 - 0.48) / 0.52
    assert stats["kappa"] == pytest.approx(0.32 / 0.52)
    (row,) = agreement_table({"mc": a, "judge": b})
    assert row["a"] == "mc" and row["b"] == "judge" and row["kappa"] == stats["kappa"]


def test_first_error_metrics():
    truth = [_lab("a", [T, F, F], "oracle", 1), _lab("b", [F, F, F], "oracle", 0), _lab("c", [T, T, T], "oracle")]
    pred = [_lab("a", [T, F, F], "mc", 1), _lab("b", [T, F, F], "mc", 1), _lab("c", [N, N, N], "judge")]
    m = first_error_metrics(pred, truth)
    assert m["rollouts"] == 3
    assert m["accuracy"] == 2 / 3  # a right, b wrong, c (None == None) right
    assert m["precision"] == 1 / 2 and m["recall"] == 1 / 2
    assert m["coverage"] == 2 / 3 and m["step_accuracy"] == 5 / 6


def test_http_judge_failure_gives_unknown_labels():
    from negrl.steps.judge import HTTPJudge

    judge = HTTPJudge("http://127.0.0.1:9/v1", model="m", timeout=2.0)  # nothing listens there
    r = Rollout(rollout_id="a", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15")
    (lab,) = judge.label([P], [r])
    assert lab.labels == [None, None, None] and lab.first_error is None
    assert judge.url == "http://127.0.0.1:9/v1/chat/completions" and len(judge.errors) == 1
