"""Interrupted training resumes: a run killed with SIGKILL after a checkpoint, then rerun, ends with the same weights
(exactly) as an uninterrupted run, and the rerun trains only the remaining steps.

Each family runs ``tests/resume_driver.py`` (a tiny model through a negrl training entry point, negrl's default
checkpoint settings) in subprocesses: uninterrupted, killed, rerun.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from negrl.trainers.resume import last_complete_checkpoint, resolve_resume


REPO_ROOT = Path(__file__).resolve().parents[1]
DRIVER = REPO_ROOT / "tests" / "resume_driver.py"
MAX_STEPS = 10  # tests/resume_driver.py
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
       "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO_ROOT)}


def _cmd(family: str, out: Path, weights: Path, *flags: str) -> list[str]:
    return [sys.executable, str(DRIVER), family, str(out), str(weights), *flags]


def run_driver(family: str, out: Path, weights: Path, *flags: str) -> None:
    proc = subprocess.run(_cmd(family, out, weights, *flags), env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def run_and_kill(family: str, out: Path, flag: str, n: int, *extra: str) -> None:
    """Start a run, wait until it parks at its ``n``-th checkpoint save (``flag``), SIGKILL it."""
    proc = subprocess.Popen(_cmd(family, out, out / "never.pt", flag, str(n), *extra), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    try:
        while not (out / "stopped").exists():
            assert proc.poll() is None, f"the run ended before its checkpoint {n}: {proc.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "timed out waiting for the checkpoint"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (out / "stopped").unlink()
    (out / "steps").unlink()  # what the rerun trains is counted from here


def trained_steps(out: Path) -> list[int]:
    path = out / "steps"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = torch.load(a), torch.load(b)
    assert sorted(wa) == sorted(wb)
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[0]}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``family -> weights file`` of an uninterrupted run (trained once per family and module)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    cache: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in cache:
            run_driver(family, root / family, root / f"{family}.pt")
            heads = 2 if family == "likra" else 1  # Likra trains two heads of MAX_STEPS steps each
            assert trained_steps(root / family) == list(range(1, MAX_STEPS + 1)) * heads
            cache[family] = root / f"{family}.pt"
        return cache[family]

    return get


def kill_and_resume(family: str, tmp_path: Path, uninterrupted, stop_after: int = 6) -> Path:
    out = tmp_path / "run"
    run_and_kill(family, out, "--stop-after-save", stop_after)
    run_driver(family, out, tmp_path / "resumed.pt")
    assert_same_weights(uninterrupted(family), tmp_path / "resumed.pt")
    return out


@pytest.mark.parametrize("family", [
    "sft",
    "bcpg",
    pytest.param("dpo", marks=pytest.mark.slow),
    pytest.param("awr", marks=pytest.mark.slow),
    pytest.param("prm", marks=pytest.mark.slow),
])
def test_killed_run_resumes_to_the_uninterrupted_weights(family, tmp_path, uninterrupted):
    # One checkpoint per step (save_steps = a tenth of 10 steps), killed after the 6th: steps 7..10 remain.
    out = kill_and_resume(family, tmp_path, uninterrupted)
    assert trained_steps(out) == list(range(7, MAX_STEPS + 1))


@pytest.mark.slow
def test_resume_with_gradient_accumulation(tmp_path):
    full, out = tmp_path / "full", tmp_path / "run"
    run_driver("sft", full, tmp_path / "full.pt", "--grad-accum", "2")
    run_and_kill("sft", out, "--stop-after-save", 5, "--grad-accum", "2")
    run_driver("sft", out, tmp_path / "resumed.pt", "--grad-accum", "2")
    # two micro-batches per optimizer step: steps 6..10 are 10 training_step calls
    assert trained_steps(out) == [s for s in range(6, MAX_STEPS + 1) for _ in range(2)]
    assert_same_weights(tmp_path / "full.pt", tmp_path / "resumed.pt")


@pytest.mark.slow
def test_two_processes_resume(tmp_path, uninterrupted):
    """Data-parallel (torchrun, 2 CPU processes on gloo): the whole process group is killed, both ranks resume."""
    import shutil

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed next to the interpreter")

    def cmd(out: Path, weights: Path, *flags: str) -> list[str]:
        return [torchrun, "--standalone", "--nproc_per_node", "2", *_cmd("sft", out, weights, *flags)[1:]]

    full, out = tmp_path / "full", tmp_path / "run"
    done = subprocess.run(cmd(full, tmp_path / "full.pt"), env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    proc = subprocess.Popen(cmd(out, out / "never.pt", "--stop-after-save", "6"), env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    markers = (out / "stopped", out / "stopped-1")  # both ranks parked after their 6th save
    while not all(m.exists() for m in markers) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(m.exists() for m in markers)
    for m in markers:
        m.unlink()
    (out / "steps").unlink()
    again = subprocess.run(cmd(out, tmp_path / "resumed.pt"), env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(trained_steps(out)) == sorted(list(range(7, MAX_STEPS + 1)) * 2)  # each rank trains 7..10
    assert_same_weights(tmp_path / "full.pt", tmp_path / "resumed.pt")


@pytest.mark.slow
def test_likra_second_head_resumes_and_restores_the_first(tmp_path, uninterrupted):
    # pos trains 10 steps (10 checkpoints), neg is killed after its 4th: the rerun loads the finished pos head
    # without training it and resumes neg at step 5 (its checkpoint also holds the trained pos adapter).
    out = kill_and_resume("likra", tmp_path, uninterrupted, stop_after=14)
    assert trained_steps(out) == list(range(5, MAX_STEPS + 1))


def test_kill_while_saving_resumes_from_the_previous_checkpoint(tmp_path, uninterrupted):
    out = tmp_path / "run"
    run_and_kill("sft", out, "--stall-in-save", 7)
    assert (out / "checkpoint-7").is_dir() and not (out / "checkpoint-7" / "trainer_state.json").exists()
    assert last_complete_checkpoint(out) == out / "checkpoint-6"
    run_driver("sft", out, tmp_path / "resumed.pt")
    assert trained_steps(out) == list(range(7, MAX_STEPS + 1))
    assert_same_weights(uninterrupted("sft"), tmp_path / "resumed.pt")


def test_finished_run_is_loaded_not_trained_again(tmp_path, uninterrupted):
    # Trainer.train(resume_from_checkpoint=<last step>) would train one extra step; train_resuming loads instead.
    weights = uninterrupted("sft")
    out = weights.parent / "sft"  # the uninterrupted run's output directory (its checkpoint-10 is the last step)
    before = trained_steps(out)
    run_driver("sft", out, tmp_path / "again.pt")
    assert trained_steps(out) == before  # no step trained by the rerun
    assert_same_weights(weights, tmp_path / "again.pt")


def test_fresh_start_on_request_discards_old_checkpoints(tmp_path, uninterrupted):
    out = tmp_path / "run"
    run_and_kill("sft", out, "--stop-after-save", 6)
    run_driver("sft", out, tmp_path / "fresh.pt", "--resume", "no")
    assert trained_steps(out) == list(range(1, MAX_STEPS + 1))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-9"]
    assert_same_weights(uninterrupted("sft"), tmp_path / "fresh.pt")


def test_checkpoint_of_other_settings_is_refused(tmp_path, uninterrupted):
    out = uninterrupted("sft").parent / "sft"
    before = trained_steps(out)
    proc = subprocess.run(_cmd("sft", out, tmp_path / "x.pt", "--learning-rate", "0.001"), env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "other training settings (learning_rate: 0.01 -> 0.001)" in proc.stderr
    assert not (tmp_path / "x.pt").exists() and trained_steps(out) == before


def test_resolve_resume_values(tmp_path):
    assert resolve_resume(tmp_path / "absent", None) == (None, False)
    assert resolve_resume(tmp_path, "no") == (None, True)
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3}')
    (tmp_path / "checkpoint-12").mkdir()  # higher step, but incomplete (no trainer_state.json)
    (tmp_path / "checkpoint-12" / "model.safetensors").write_text("")
    assert resolve_resume(tmp_path, None) == (str(tmp_path / "checkpoint-3"), False)
    assert resolve_resume(tmp_path, "last") == (str(tmp_path / "checkpoint-3"), False)
    assert resolve_resume(tmp_path, str(tmp_path / "checkpoint-3")) == (str(tmp_path / "checkpoint-3"), False)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-99"))
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-12"))


def test_every_training_entry_point_goes_through_train_resuming():
    """No ``trainer.train(...)`` outside ``negrl/trainers/resume.py``: a direct call would restart a killed run."""
    direct = re.compile(r"\btrainer\.train\(")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{i}"
        for folder in ("negrl", "recipes")
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
        if path.name != "resume.py"
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert not offenders, offenders
