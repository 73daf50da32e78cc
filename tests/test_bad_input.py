"""Bad input gives a clear error (file, line, field and expected type) before any model is loaded or file written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from negrl.io import StageError, StageWriter, cached_stage, read_jsonl, read_stage, write_stage
from negrl.records import Problem, Rollout, StepLabels, Verdict


def _problem(pid: str = "arithmetic:1") -> Problem:
    return Problem(problem_id=pid, domain="arithmetic", prompt="Q: 1+2\n", answer="3",
                   meta={"ops": ["+"], "operands": [1, 2]})


def _rollout(rid: str = "arithmetic:1#0", pid: str = "arithmetic:1") -> Rollout:
    return Rollout(rollout_id=rid, problem_id=pid, completion="1+2=3\nAnswer: 3")


# --- corrupt manifest / stage config ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"count": 1, "shards": ["shard-0', "", "[1, 2]", '{"count": "one"}'])
def test_corrupt_manifest_names_the_file(tmp_path, text):
    write_stage(tmp_path / "s", [_problem()], Problem)
    (tmp_path / "s" / "manifest.json").write_text(text)
    with pytest.raises(StageError, match=r"s/manifest.json: corrupt manifest"):
        read_stage(tmp_path / "s", Problem)
    with pytest.raises(StageError, match=r"s/manifest.json: corrupt manifest"):
        cached_stage(tmp_path / "s", Problem, lambda: [_problem()], {})


def test_missing_shard_is_named(tmp_path):
    write_stage(tmp_path / "s", [_problem()], Problem)
    (tmp_path / "s" / "shard-00000.jsonl").unlink()
    with pytest.raises(StageError, match=r"manifest.json lists shard-00000.jsonl, which is missing"):
        read_stage(tmp_path / "s", Problem)


def test_corrupt_stage_config_names_the_file(tmp_path):
    writer = StageWriter(tmp_path / "s", Problem, config={"seed": 0})
    writer.write([_problem()])
    writer.flush()
    (tmp_path / "s" / "config.json").write_text('{"seed": ')
    with pytest.raises(StageError, match=r"s/config.json: corrupt stage config \(Expecting value: line 1"):
        StageWriter(tmp_path / "s", Problem, config={"seed": 0})


# --- line numbers -----------------------------------------------------------------------------------------------


def test_blank_lines_do_not_shift_the_reported_line(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    good = json.dumps(_rollout().to_row())
    bad = json.dumps({**_rollout("arithmetic:1#1").to_row(), "completion": 7})
    path.write_text(f"{good}\n\n\n{bad}\n")  # the bad record is on line 4 of the file
    with pytest.raises(ValueError, match=r"rollouts.jsonl:4: "):
        read_jsonl(path, Rollout)


# --- wrong-typed record fields ----------------------------------------------------------------------------------

_ROLLOUT = _rollout().to_row()
_LABELS = {"rollout_id": "a#0", "steps": [{"text": "1+2=3\n", "start": 0, "end": 6}], "values": [0.5],
           "labels": [True], "first_error": None, "source": "mc"}


@pytest.mark.parametrize(("record", "row", "message"), [
    (Rollout, {**_ROLLOUT, "completion": 12}, "field Rollout.completion: expected str, got int 12"),
    (Rollout, {**_ROLLOUT, "completion": None}, "field Rollout.completion: expected str, got NoneType"),
    (Rollout, {**_ROLLOUT, "sample_index": 1.5}, "field Rollout.sample_index: expected int, got float 1.5"),
    (Rollout, {**_ROLLOUT, "completion_ids": [1, "2"]}, "field Rollout.completion_ids: expected list[int] | None"),
    (Problem, {**_problem().to_row(), "prompt": ["Q"]}, "field Problem.prompt: expected str, got list"),
    (Problem, {**_problem().to_row(), "meta": "ops"}, "field Problem.meta: expected dict[str, Any], got str"),
    (Verdict, {"rollout_id": "a#0", "correct": "yes"}, "field Verdict.correct: expected bool | None, got str"),
    (StepLabels, {**_LABELS, "labels": [1]}, "field StepLabels.labels: expected list[bool | None], got list"),
    (StepLabels, {**_LABELS, "first_error": "0"}, "field StepLabels.first_error: expected int | None, got str"),
    (StepLabels, {**_LABELS, "steps": [{"text": "1+2=3\n", "start": "0", "end": 6}]},
     "field StepLabels.steps[0].start: expected int, got str '0'"),
    (StepLabels, {**_LABELS, "steps": ["1+2=3\n"]}, "field StepLabels.steps: expected list[Step], got list"),
])
def test_wrong_typed_field_names_file_line_field_and_type(tmp_path, record, row, message):
    path = tmp_path / "shard-00000.jsonl"
    path.write_text("\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError) as info:
        read_jsonl(path, record)
    assert str(info.value).startswith(f"{path}:2: {message}")


def test_well_typed_rows_still_load(tmp_path):
    # ints are floats (JSON tools write 1.0 as 1); nested Steps come back as Step objects
    row = {**_LABELS, "values": [1], "prefix_value": 0}
    (tmp_path / "x.jsonl").write_text(json.dumps(row) + "\n")
    (lab,) = read_jsonl(tmp_path / "x.jsonl", StepLabels)
    assert lab.values == [1] and lab.steps[0].end == 6


# --- a rollout of an unknown problem ----------------------------------------------------------------------------


def test_rollout_of_unknown_problem_is_named(arithmetic_task):
    from negrl.steps.judge import OracleJudge
    from negrl.verifiers import verify_rollouts

    (problem,) = arithmetic_task.generate_problems(1, seed=0)
    stray = _rollout("other:9#0", "other:9")
    for call in (lambda: verify_rollouts([problem], [stray]), lambda: OracleJudge().label([problem], [stray])):
        with pytest.raises(ValueError, match=r"rollout 'other:9#0' of problem 'other:9'"):
            call()


# --- a missing local model path ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["runs/base/no-such-run", "./no-such-model", "no/such/dir/"])
def test_missing_local_model_path_says_no_such_directory(tmp_path, monkeypatch, name):
    from negrl.modeling import load_policy

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_policy(name)


# --- nothing written before the input is validated --------------------------------------------------------------


def test_stage_config_is_written_with_the_first_shard(tmp_path):
    writer = StageWriter(tmp_path / "s", Problem, config={"seed": 0})
    assert not (tmp_path / "s" / "config.json").exists()
    writer.write([_problem()])
    writer.flush()
    assert json.loads((tmp_path / "s" / "config.json").read_text()) == {"seed": 0}


def test_label_steps_validates_inputs_before_writing(tmp_path, arithmetic_task):
    from negrl.experiments.label_steps import LabelStepsConfig, run_label_steps

    (problem,) = arithmetic_task.generate_problems(1, seed=0)
    write_stage(tmp_path / "problems", [problem], Problem)
    write_stage(tmp_path / "rollouts", [_rollout("other:9#0", "other:9")], Rollout)
    out = tmp_path / "labels"
    cfg = LabelStepsConfig(source="oracle", problems=str(tmp_path / "problems"),
                           rollouts=str(tmp_path / "rollouts"), output_dir=str(out))
    with pytest.raises(ValueError, match="not among the 1 problems"):
        run_label_steps(cfg)
    assert not out.exists()  # no config.json, no stage directory

    out.mkdir()
    (out / "config.json").write_text('{"source": "mc"}')  # a previous run's config stays with that run's labels
    bad = tmp_path / "rollouts" / "shard-00000.jsonl"
    good = Rollout(rollout_id=f"{problem.problem_id}#0", problem_id=problem.problem_id, completion=problem.solution)
    bad.write_text(json.dumps({**good.to_row(), "completion": 3}) + "\n")
    with pytest.raises(ValueError, match=r"shard-00000.jsonl:1: field Rollout.completion: expected str"):
        run_label_steps(cfg)
    assert (out / "config.json").read_text() == '{"source": "mc"}'
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]

    write_stage(tmp_path / "rollouts", [good], Rollout)
    run_label_steps(cfg)
    assert json.loads((out / "config.json").read_text())["source"] == "oracle"


def test_mc_label_steps_with_a_missing_policy_writes_nothing(tmp_path):
    from negrl.experiments.label_steps import LabelStepsConfig, run_label_steps

    write_stage(tmp_path / "problems", [_problem()], Problem)
    write_stage(tmp_path / "rollouts", [_rollout()], Rollout)
    cfg = LabelStepsConfig(source="mc", problems=str(tmp_path / "problems"), rollouts=str(tmp_path / "rollouts"),
                           policy=str(Path("runs") / "no" / "such-policy"), output_dir=str(tmp_path / "labels"))
    with pytest.raises(FileNotFoundError, match="no such directory"):
        run_label_steps(cfg)
    assert not (tmp_path / "labels").exists()


def test_missing_prm_directory_says_no_such_directory(tmp_path):
    from negrl.steps.prm import PRMScorer

    with pytest.raises(FileNotFoundError, match="no such directory"):
        PRMScorer.from_pretrained(tmp_path / "runs" / "no-such-prm")


def test_benchmark_file_with_a_wrong_typed_field_names_file_line_and_type(tmp_path):
    from negrl.benchmarks.math_benchmarks import load_gsm8k

    good = {"question": "1+1?", "answer": "1+1=2\n#### 2"}
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "question": 12}) + "\n")
    with pytest.raises(ValueError, match=r"test.jsonl:3: field 'question': expected str, got int 12"):
        load_gsm8k(path)


def test_pipeline_with_a_missing_base_policy_writes_nothing(tmp_path):
    from negrl.experiments.compare import run_pipeline
    from negrl.experiments.pipeline import PipelineConfig

    cfg = PipelineConfig(base_policy=str(tmp_path / "runs" / "base" / "missing"), output_dir=str(tmp_path / "out"),
                         methods=["base"])
    with pytest.raises(FileNotFoundError, match="no such directory"):
        run_pipeline(cfg)
    assert not (tmp_path / "out").exists()
