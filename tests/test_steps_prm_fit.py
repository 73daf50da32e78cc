"""``fit_prm``: the one PRM-on-step-labels recipe (used by the BCPG experiment and the label validation)."""

from __future__ import annotations

import json

from negrl.records import Problem, Rollout
from negrl.steps.judge import OracleJudge
from negrl.steps.prm import PRM_FILE, PRMScorer, fit_prm


P = Problem(problem_id="p", domain="arithmetic", prompt="Q: (3+4)*2\n", answer="14",
            meta={"operands": [3, 4, 2], "ops": ["+", "*"], "values": [7, 14]})
R = [Rollout(rollout_id="p#0", problem_id="p", completion="3+4=7\n7*2=15\nAnswer: 15"),
     Rollout(rollout_id="p#1", problem_id="p", completion="3+4=7\n7*2=14\nAnswer: 14")]


def test_fit_prm_trains_saves_and_scores(tmp_path, tiny_model, char_tokenizer):
    labels = OracleJudge().label([P], R)
    scorer, rows = fit_prm(tiny_model, char_tokenizer, [P], labels, tmp_path / "trainer", steps=2, learning_rate=1e-3,
                           lora_r=4, seed=0, threshold=0.5, save_to=tmp_path / "prm")
    assert rows == 2 and isinstance(scorer, PRMScorer) and scorer.threshold == 0.5
    assert json.loads((tmp_path / "prm" / PRM_FILE).read_text())["threshold"] == 0.5
    again = PRMScorer.from_pretrained(tmp_path / "prm").label([P], R)
    assert [len(lab.labels) for lab in again] == [3, 3]
