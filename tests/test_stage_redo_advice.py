"""A stage made with other settings: the error says what a recipe / CLI user can do, and following it works."""

from __future__ import annotations

import json
import shutil

import pytest

from negrl.experiments.cli import cmd_sample
from negrl.io import StageError, StageWriter
from negrl.records import Problem


@pytest.fixture()
def tiny_policy(tmp_path):
    from negrl.modeling import build_tiny_llama, save_policy
    from negrl.tokenizer import build_char_tokenizer

    out = tmp_path / "policy"
    save_policy(build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0),
                build_char_tokenizer(), out)
    return out


def test_cli_stage_error_names_what_the_user_can_do_and_the_advice_works(tiny_policy, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--set", f"policy={tiny_policy}", "limit=2", "max_new_tokens=4", "batch_size=8"]
    cmd_sample([*common, f"output_dir={run}", "num_samples=1"])
    with pytest.raises(StageError) as err:
        cmd_sample([*common, f"output_dir={run}", "num_samples=2"])  # other settings, same directory
    message = str(err.value)
    assert str(run / "rollouts") in message and "delete" in message
    assert "--set output_dir=DIR" in message and "--output_dir DIR" in message
    # the two ways out the message gives, as a user would take them
    cmd_sample([*common, f"output_dir={tmp_path / 'elsewhere'}", "num_samples=2"])
    shutil.rmtree(run / "rollouts")
    shutil.rmtree(run / "verdicts")  # its inputs changed: it says so in turn (same advice), deleted up front here
    cmd_sample([*common, f"output_dir={run}", "num_samples=2"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rollouts"] == 4


def test_stage_writer_errors_give_the_same_advice(tmp_path):
    writer = StageWriter(tmp_path / "s", Problem, config={"seed": 0})
    writer.write([Problem(problem_id="p", prompt="1+1=", answer="2", domain="math")])
    writer.flush()
    with pytest.raises(StageError, match=r"delete .* --set output_dir=DIR"):
        StageWriter(tmp_path / "s", Problem, config={"seed": 1})
    (tmp_path / "s" / "config.json").unlink()
    with pytest.raises(StageError, match=r"no config.json.*delete .* --set output_dir=DIR"):
        StageWriter(tmp_path / "s", Problem, config={"seed": 0})
    assert StageWriter(tmp_path / "s", Problem, config={"seed": 1}, overwrite=True).done_keys == set()
