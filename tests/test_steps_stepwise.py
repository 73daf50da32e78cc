"""Step labels ⇄ TRL stepwise-supervision rows (prompt, completions: list[str], labels: list[bool])."""

from __future__ import annotations

import pytest

from negrl.records import Problem, Rollout
from negrl.steps.judge import OracleJudge
from negrl.steps.stepwise import from_stepwise, load_stepwise, save_stepwise, stepwise_rows, to_stepwise_dataset


P = Problem(problem_id="p", domain="arithmetic", prompt="Q: (3+4)*2\n", answer="14",
            meta={"operands": [3, 4, 2], "ops": ["+", "*"], "values": [7, 14]})
R = [Rollout(rollout_id="p#0", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15"),
     Rollout(rollout_id="p#1", problem_id="p", completion="3+4=7\n7*2=14\nAnswer: 14")]


@pytest.mark.parametrize("name", ["stepwise", "stepwise.jsonl"])
def test_round_trip_through_disk_and_jsonl(tmp_path, name):
    labels = OracleJudge().label([P], R)
    ds = to_stepwise_dataset([P], labels)
    assert ds[0]["completions"] == ["3+4=7\n", "7*2=15\n", "Answer: 15"] and ds[0]["labels"] == [True, False, False]
    back = load_stepwise(save_stepwise(ds, tmp_path / name))
    problems, rollouts, got = from_stepwise(back)
    assert [p.prompt for p in problems] == [P.prompt]
    assert [r.completion for r in rollouts] == [r.completion for r in R]  # steps carry their newlines
    assert [(g.rollout_id, g.labels, g.first_error) for g in got] == [(x.rollout_id, x.labels, x.first_error)
                                                                       for x in labels]
    assert [[s.text for s in g.steps] for g in got] == [[s.text for s in x.steps] for x in labels]


def test_unknown_labels_end_a_row_and_a_row_without_known_labels_is_left_out():
    labels = OracleJudge().label([P], R)
    labels[0].labels = [True, None, False]
    labels[1].labels = [None, True, True]
    rows = stepwise_rows([P], labels)
    assert [(r["rollout_id"], r["labels"]) for r in rows] == [("p#0", [True])]


def test_foreign_rows_import_with_a_separator_and_bad_rows_are_refused(tmp_path):
    rows = [{"prompt": "2+2?", "completions": ["2+2=5", "so 5"], "labels": [False, False]}]
    problems, rollouts, labels = from_stepwise(rows, separator="\n")
    assert rollouts[0].completion == "2+2=5\nso 5" and labels[0].first_error == 0 and problems[0].problem_id == "stepwise-0"
    with pytest.raises(ValueError, match="2 completions but 1 labels"):
        from_stepwise([{"prompt": "q", "completions": ["a", "b"], "labels": [True]}])
    with pytest.raises(ValueError, match="booleans"):
        from_stepwise([{"prompt": "q", "completions": ["a"], "labels": [None]}])
    (tmp_path / "x.jsonl").write_text('{"prompt": "q", "chosen": "a"}\n')
    with pytest.raises(ValueError, match="missing column"):
        load_stepwise(tmp_path / "x.jsonl")
