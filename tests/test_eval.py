"""Eval harness end to end on the synthetic task with a tiny trained policy; pass@k / maj@k against hand values."""

from __future__ import annotations

import json
import math
import sys

import pytest

from negrl.metrics import maj_at_k, majority_vote, mean_ci, pass_at_k, per_problem_metrics


sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))  # `eval/` lives at the repo root


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (5, 2, 3, 1 - 1 / 10),  # 1 - C(3,3)/C(5,3)
        (5, 2, 4, 1.0),  # n - c < k
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
    ],
)
def test_pass_at_k_hand_values(n: int, c: int, k: int, expected: float) -> None:
    assert math.isclose(pass_at_k(n, c, k), expected, rel_tol=1e-12)


def test_pass_at_k_matches_the_binomial_formula() -> None:
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert math.isclose(pass_at_k(n, c, k), 1 - math.comb(n - c, k) / math.comb(n, k), abs_tol=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_majority_vote_and_per_problem_metrics() -> None:
    answers = ["5", "6", "6", None, "5"]
    correct = [True, False, False, False, True]
    assert maj_at_k(answers, correct, 1) is True
    assert maj_at_k(answers, correct, 3) is False  # "6" wins 2–1
    assert maj_at_k(answers, correct, 5) is True  # 2–2 tie: "5" was seen first
    assert majority_vote([None, None], [False, False]) is False
    m = per_problem_metrics(list(zip(answers, correct)), ks=[1, 2, 5])
    assert m["pass@1"] == pytest.approx(0.4) and m["pass@2"] == pytest.approx(0.7) and m["pass@5"] == 1.0
    assert m["maj@5"] == 1.0
    unverified = per_problem_metrics([("1", None), ("1", True)], ks=[1, 2])
    assert unverified["pass@1"] == 1.0 and unverified["pass@2"] is None  # only one verified sample
    ci = mean_ci([1.0, 0.0, 1.0, 1.0])
    assert ci.mean == 0.75 and 0.0 <= ci.lo < 0.75 < ci.hi <= 1.0


def test_eval_end_to_end_on_the_synthetic_task(trained_policy_dir, tmp_path, capsys) -> None:
    from eval.run import main

    out = tmp_path / "eval"
    knobs = json.dumps({"min_steps": 1, "max_steps": 2, "digits": 1, "max_value": 99})
    args = ["--model", str(trained_policy_dir), "--benchmarks", "arithmetic", "--limit", "16", "--num_samples", "4",
            "--ks", "1", "4", "--temperature", "1.0", "--max_new_tokens", "32", "--task_kwargs", knobs,
            "--device", "cpu", "--output_dir", str(out), "--verify_workers", "2"]  # fmt: skip
    report = main(args)
    section = report["benchmarks"]["arithmetic"]
    assert section["n_problems"] == 16 and len(section["problems"]) == 16
    assert all(len(row["samples"]) == 4 for row in section["problems"])
    # Per-problem pass@k recomputed from the stored verdicts.
    for row in section["problems"]:
        c = sum(s["correct"] is True for s in row["samples"])
        assert row["metrics"]["pass@1"] == pytest.approx(c / 4)
        assert row["metrics"]["pass@4"] == (1.0 if c else 0.0)
    flags = [s["correct"] for row in section["problems"] for s in row["samples"]]
    assert section["metrics"]["accuracy"].mean == pytest.approx(sum(f is True for f in flags) / len(flags))
    assert all(s["extracted"] is None or s["extracted"].lstrip("-").isdigit()
               for row in section["problems"] for s in row["samples"])  # fmt: skip
    assert section["metrics"]["pass@4"].mean >= section["metrics"]["pass@1"].mean
    saved = json.loads((out / "report.json").read_text())
    assert saved["benchmarks"]["arithmetic"]["problems"][0]["samples"][0]["rollout_id"].endswith("#0")
    assert (out / "config.yaml").exists()
    table = capsys.readouterr().out
    assert "| arithmetic | 16 |" in table and "pass@4" in table and "maj@4" in table


def test_benchmark_prompts(shared_data) -> None:
    from eval.prompts import build_prompts
    from negrl.problems import load_problems

    gsm = load_problems("gsm8k", path=shared_data, limit=2)
    prompted, stops = build_prompts("gsm8k", gsm, few_shot=2, path=shared_data)
    assert prompted[0].prompt.startswith("Question: ") and prompted[0].prompt.count("####") == 2
    assert prompted[0].prompt.endswith(f"Question: {gsm[0].prompt}\nAnswer:") and stops == ["\n\nQuestion:"]
    assert gsm[0].prompt not in prompted[0].prompt.split("\n\n")[0]  # shots come from train, not the test problem
    math = load_problems("math500", path=shared_data, limit=1)
    chat, chat_stops = build_prompts("math500", math, chat=True, instruction=True)
    assert "\\boxed{}" in chat[0].prompt and chat_stops == []
    chat, chat_stops = build_prompts("math500", math, chat=True)  # the training prompt: no added instruction
    assert chat[0].prompt == math[0].prompt and chat_stops == []
    mbpp = load_problems("mbpp", path=shared_data, limit=1)
    prompted, stops = build_prompts("mbpp", mbpp, few_shot=3, path=shared_data)
    assert prompted[0].prompt.count("[DONE]") == 3 and prompted[0].prompt.endswith("[BEGIN]\n") and stops == ["[DONE]"]
    he = load_problems("humaneval", limit=1)
    prompted, stops = build_prompts("humaneval", he)
    assert prompted[0].prompt == he[0].prompt and "\ndef " in stops
    # A completion cut at the stop string verifies: the canonical body continues the prompt.
    from negrl.verifiers import verify

    assert verify(prompted[0], he[0].solution).correct is True
