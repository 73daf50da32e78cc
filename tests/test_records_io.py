import json

import pytest

from negrl.io import StageError, StageWriter, is_complete, read_jsonl, read_stage, write_stage
from negrl.records import Problem, Rollout, Step, StepLabels, Verdict


def _records():
    p = Problem(problem_id="p1", domain="arithmetic", prompt="Q: 1+2\n", answer="3", meta={"ops": ["+"]})
    r = Rollout(rollout_id="p1#0", problem_id="p1", completion="1+2=3\nAnswer: 3", seed=7)
    v = Verdict(rollout_id="p1#0", correct=None, extracted="3", detail="x", verifier="arithmetic")
    s = StepLabels(
        rollout_id="p1#0",
        steps=[Step("1+2=3\n", 0, 6), Step("Answer: 3", 6, 15)],
        values=[0.5, None],
        labels=[True, None],
        first_error=None,
        source="mc",
        prefix_value=0.25,
    )
    return [p, r, v, s]


@pytest.mark.parametrize("record", _records(), ids=lambda r: type(r).__name__)
def test_record_round_trip_through_json(record):
    row = json.loads(json.dumps(record.to_row()))
    assert type(record).from_row(row) == record


def test_from_row_rejects_unknown_and_missing_fields():
    with pytest.raises(ValueError, match="unknown field"):
        Verdict.from_row({"rollout_id": "a", "correct": True, "bogus": 1})
    with pytest.raises(ValueError, match="missing field"):
        Verdict.from_row({"rollout_id": "a"})
    with pytest.raises(ValueError, match="unknown domain"):
        Problem(problem_id="x", domain="poetry", prompt="")


def test_step_labels_advantages_and_length_check():
    s = _records()[3]
    assert s.advantages == [pytest.approx(0.25), None]
    with pytest.raises(ValueError, match="2 steps but 1 values"):
        StepLabels(rollout_id="r", steps=s.steps, values=[0.1], labels=[None, None], first_error=None, source="mc")


def test_unverified_is_none_not_false():
    v = Verdict.from_row({"rollout_id": "a", "correct": None})
    assert v.correct is None


def test_stage_resume_after_interruption(tmp_path):
    rollouts = [Rollout(rollout_id=f"p#{i}", problem_id="p", completion=str(i)) for i in range(10)]
    w = StageWriter(tmp_path / "st", Rollout, config={"n": 10}, shard_size=3)
    w.write(rollouts[:7])  # two whole shards flushed, one record buffered and lost when the run is "killed"
    del w
    assert not is_complete(tmp_path / "st")
    with pytest.raises(StageError, match="incomplete"):
        read_stage(tmp_path / "st", Rollout)

    w = StageWriter(tmp_path / "st", Rollout, config={"n": 10}, shard_size=3)
    assert w.done_keys == {f"p#{i}" for i in range(6)}
    w.write([r for r in rollouts if r.key not in w.done_keys])
    w.finalize(note="done")
    assert read_stage(tmp_path / "st", Rollout) == rollouts
    assert StageWriter(tmp_path / "st", Rollout, config={"n": 10}).complete


def test_stage_refuses_other_config_and_half_written_shard_is_dropped(tmp_path):
    write_stage(tmp_path / "st", [Verdict(rollout_id="a", correct=True)], Verdict, config={"k": 1})
    with pytest.raises(StageError, match=r"differs in \['k'\]"):
        StageWriter(tmp_path / "st", Verdict, config={"k": 2})
    (tmp_path / "st2").mkdir()
    (tmp_path / "st2" / "shard-00000.jsonl.tmp").write_text('{"rollout_id": "half')
    w = StageWriter(tmp_path / "st2", Verdict)
    assert w.records() == [] and not list((tmp_path / "st2").glob("*.tmp"))


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"rollout_id": "a", "correct": true}\n\n{"rollout_id": \n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3: malformed JSON"):
        read_jsonl(path, Verdict)
    path.write_text('{"rollout_id": "a", "correct": true}\n{"rollout_id": "b", "oops": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: .*unknown field"):
        read_jsonl(path, Verdict)


def test_cached_stage_reuses_same_config_and_refuses_another(tmp_path):
    from negrl.io import StageError, cached_stage

    made = [Problem(problem_id="a", domain="arithmetic", prompt="Q: 1+1\n", answer="2")]
    assert cached_stage(tmp_path / "p", Problem, lambda: made, {"n_prompts": 1}) == made
    assert cached_stage(tmp_path / "p", Problem, lambda: [], {"n_prompts": 1}) == made  # reused, not remade
    with pytest.raises(StageError, match=r"differs in \['n_prompts'\].*another output directory"):
        cached_stage(tmp_path / "p", Problem, lambda: [], {"n_prompts": 2})
