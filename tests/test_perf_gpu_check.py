"""perf/gpu_check.py (the GPU check of issue-level real-model work) runs end to end on the CPU and reports failures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch


def _module():
    path = Path(__file__).resolve().parents[1] / "perf" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_smoke_run_passes_every_check(capsys):
    assert _module().main(["--allow-cpu", "--steps", "2"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] is True and set(report["checks"]) == {"sft", "step_dpo", "awr", "bcpg_nsa", "generation",
                                                               "monte_carlo"}
    assert all("error" not in c for c in report["checks"].values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_without_a_gpu_it_refuses_unless_asked(capsys):
    assert _module().main([]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
