"""Dataset builders of the per-step method: exact TRL columns, truncation at the critical step, EOS flags, knobs."""

from __future__ import annotations

import pytest

from negrl.builders import AWRRowConfig, BuildStats, PairConfig, awr_rows, outcome_dpo_pairs, rft_rows, step_dpo_pairs
from negrl.records import Problem, Rollout, Step, StepLabels, Verdict


PROMPT = "Q: (2+3)*4\n"
GOLD = "2+3=5\n5*4=20\nAnswer: 20"


def _problem(pid: str = "p1", prompt: str = PROMPT) -> Problem:
    return Problem(problem_id=pid, domain="arithmetic", prompt=prompt, answer="20")


def _labels(rid: str, text: str, first_error: int | None, values: list[float], prefix_value: float = 1.0) -> StepLabels:
    steps, start = [], 0
    for line in text.splitlines(keepends=True):
        steps.append(Step(text=line, start=start, end=start + len(line)))
        start += len(line)
    labels = [first_error is None or i < first_error for i in range(len(steps))]
    return StepLabels(rollout_id=rid, steps=steps, values=values, labels=labels, first_error=first_error, source="mc",
                      prefix_value=prefix_value)


@pytest.fixture()
def records():
    """One problem, 2 correct samples (one duplicate), 3 wrong: pit at step 1, pit at step 0, no pit."""
    texts = {
        "p1#0": (GOLD, True),
        "p1#1": (GOLD, True),
        "p1#2": ("2+3=5\n5*4=25\nAnswer: 25", False),
        "p1#3": ("2+3=6\n6*4=24\nAnswer: 24", False),
        "p1#4": ("2+3=5\n5*4=20\nAnswer: 21", False),
    }
    rollouts = [Rollout(rollout_id=r, problem_id="p1", completion=t, sample_index=int(r[-1])) for r, (t, _) in
                texts.items()]
    verdicts = [Verdict(rollout_id=r, correct=ok) for r, (_, ok) in texts.items()]
    labels = [
        _labels("p1#2", texts["p1#2"][0], 1, [1.0, 0.0, 0.0]),
        _labels("p1#3", texts["p1#3"][0], 0, [0.0, 0.0, 0.0], prefix_value=0.5),
        _labels("p1#4", texts["p1#4"][0], None, [1.0, 1.0, 1.0]),
    ]
    return [_problem()], rollouts, verdicts, labels


def test_step_dpo_pairs_paper_format_truncates_after_critical_step(records):
    stats = BuildStats()
    ds = step_dpo_pairs(*records, PairConfig(chosen="first"), stats=stats)
    assert ds.column_names == ["prompt", "chosen", "rejected", "chosen_eos", "rejected_eos", "problem_id",
                               "rejected_id", "critical_step"]
    rows = {r["rejected_id"]: r for r in ds}
    assert set(rows) == {"p1#2", "p1#3"}  # p1#4 has no pit: dropped
    assert rows["p1#2"]["rejected"] == "2+3=5\n5*4=25\n"  # truncated right after the pit line
    assert rows["p1#3"]["rejected"] == "2+3=6\n"
    assert all(r["prompt"] == PROMPT and r["chosen"] == GOLD for r in ds)
    assert all(r["chosen_eos"] and not r["rejected_eos"] for r in ds)
    assert [rows["p1#2"]["critical_step"], rows["p1#3"]["critical_step"]] == [1, 0]
    assert stats.kept == 2 and stats.dropped == {"no_pit": 1}


def test_step_dpo_pairs_shared_prefix_format(records):
    ds = step_dpo_pairs(*records, PairConfig(format="shared_prefix"))
    rows = {r["rejected_id"]: r for r in ds}
    # Pit at step 1: prompt = problem + step 0; chosen = the correct continuation sharing that prefix; rejected = step 1.
    assert rows["p1#2"]["prompt"] == PROMPT + "2+3=5\n"
    assert rows["p1#2"]["chosen"] == "5*4=20\nAnswer: 20"
    assert rows["p1#2"]["rejected"] == "5*4=25\n"
    # Pit at step 0: the prefix is empty.
    assert rows["p1#3"]["prompt"] == PROMPT and rows["p1#3"]["rejected"] == "2+3=6\n"


def test_pit_on_last_step_of_a_finished_sample_keeps_eos(records):
    problems, rollouts, verdicts, labels = records
    labels[2] = _labels("p1#4", rollouts[4].completion, 2, [1.0, 1.0, 0.0])
    ds = step_dpo_pairs(problems, rollouts, verdicts, labels, PairConfig())
    row = next(r for r in ds if r["rejected_id"] == "p1#4")
    assert row["rejected"] == rollouts[4].completion and row["rejected_eos"] is True


def test_keep_negatives_without_pit_uses_them_whole(records):
    ds = step_dpo_pairs(*records, PairConfig(drop_without_pit=False))
    row = next(r for r in ds if r["rejected_id"] == "p1#4")
    assert row["rejected"] == "2+3=5\n5*4=20\nAnswer: 21" and row["rejected_eos"] and row["critical_step"] == -1


def test_negatives_cap_dedup_and_chosen_choice():
    problem = _problem()
    texts = ["2+3=5\n5*4=20\nAnswer: 20", "2+3=5\n5*4=20\nAnswer:20", "2+3=6\n", "2+3=6\n", "2+3=7\n", "2+3=8\n"]
    oks = [True, True, False, False, False, False]
    rollouts = [Rollout(rollout_id=f"p1#{i}", problem_id="p1", completion=t, sample_index=i) for i, t in enumerate(texts)]
    verdicts = [Verdict(rollout_id=f"p1#{i}", correct=ok) for i, ok in enumerate(oks)]
    labels = [_labels(f"p1#{i}", texts[i], 0, [0.0]) for i in range(2, 6)]
    ds = step_dpo_pairs([problem], rollouts, verdicts, labels, PairConfig(chosen="shortest"))
    assert sorted(ds["rejected"]) == ["2+3=6\n", "2+3=7\n", "2+3=8\n"]  # duplicate negative dropped
    assert set(ds["chosen"]) == {"2+3=5\n5*4=20\nAnswer:20"}  # the shortest correct sample
    capped = step_dpo_pairs([problem], rollouts, verdicts, labels, PairConfig(negatives_per_problem=2, seed=3))
    assert len(capped) == 2
    again = step_dpo_pairs([problem], rollouts, verdicts, labels, PairConfig(negatives_per_problem=2, seed=3))
    assert capped["rejected"] == again["rejected"]  # seeded
    nodedup = step_dpo_pairs([problem], rollouts, verdicts, labels, PairConfig(dedup=False))
    assert len(nodedup) == 4


def test_pit_that_starts_a_correct_solution_gives_no_pair():
    """A Monte-Carlo false negative: the 'pit' step is the first line of the only correct solution."""
    problem = _problem()
    rollouts = [Rollout(rollout_id="p1#0", problem_id="p1", completion=GOLD),
                Rollout(rollout_id="p1#1", problem_id="p1", completion="2+3=5\n5*4=21\nAnswer: 21", sample_index=1)]
    verdicts = [Verdict(rollout_id="p1#0", correct=True), Verdict(rollout_id="p1#1", correct=False)]
    labels = [_labels("p1#1", rollouts[1].completion, 0, [0.0, 0.0, 0.0])]
    stats = BuildStats()
    assert len(step_dpo_pairs([problem], rollouts, verdicts, labels, stats=stats)) == 0
    assert stats.dropped == {"chosen_extends_rejected": 1}


def test_unverifiable_rollouts_are_never_negatives(records):
    problems, rollouts, verdicts, labels = records
    verdicts[2] = Verdict(rollout_id="p1#2", correct=None)
    ds = step_dpo_pairs(problems, rollouts, verdicts, labels)
    assert "p1#2" not in ds["rejected_id"]


def test_outcome_pairs_use_whole_negatives_with_eos(records):
    ds = outcome_dpo_pairs(*records[:3], PairConfig(chosen="first"))
    assert sorted(ds["rejected_id"]) == ["p1#2", "p1#3", "p1#4"]
    assert all(r["rejected_eos"] and r["critical_step"] == -1 for r in ds)
    assert "2+3=5\n5*4=25\nAnswer: 25" in ds["rejected"]


def test_rft_rows_are_unique_correct_samples(records):
    ds = rft_rows(*records[:3])
    assert ds.column_names == ["prompt", "completion", "problem_id", "add_eos"] and ds["add_eos"] == [True]
    assert ds["completion"] == [GOLD] and ds["prompt"] == [PROMPT]
    assert len(rft_rows(*records[:3], dedup=False)) == 2


def test_awr_rows_spans_carry_step_advantages(records):
    ds = awr_rows(*records)
    rows = {(r["completion"], r["correct"]): r for r in ds}
    assert ds.column_names == ["prompt", "completion", "spans", "add_eos", "problem_id", "correct"]
    pos = rows[(GOLD, True)]
    assert pos["add_eos"] and pos["spans"] == []  # unlabelled positive: advantage 0 everywhere
    neg = rows[("2+3=5\n5*4=25\n", False)]  # truncated after its pit, no EOS
    assert not neg["add_eos"]
    # values [1, 0, 0], prefix 1 → advantages [0, -1]; spans up to the pit only
    assert neg["spans"] == [[0.0, 6.0, 0.0], [6.0, 13.0, -1.0]]
    neg0 = rows[("2+3=6\n", False)]
    assert neg0["spans"] == [[0.0, 6.0, -0.5]]
    assert len(ds) == 3  # duplicate positive deduplicated, the pit-less negative dropped
    whole = awr_rows(*records, AWRRowConfig(truncate_negatives=False, drop_without_pit=False))
    assert len(whole) == 4 and any(r["completion"] == "2+3=5\n5*4=25\nAnswer: 25" for r in whole)


def test_pair_config_rejects_bad_values():
    with pytest.raises(ValueError, match="format"):
        PairConfig(format="pairs")
    with pytest.raises(ValueError, match="chosen"):
        PairConfig(chosen="best")


def test_a_correct_sample_cut_by_the_token_limit_is_no_chosen_side(records):
    problems, rollouts, verdicts, labels = records
    cut = [Rollout(rollout_id=r.rollout_id, problem_id=r.problem_id, completion=r.completion,
                   finish_reason="length" if r.rollout_id in ("p1#0", "p1#1") else "stop", sample_index=r.sample_index)
           for r in rollouts]  # fmt: skip
    stats = BuildStats()
    assert len(step_dpo_pairs(problems, cut, verdicts, labels, PairConfig(), stats=stats)) == 0
    assert stats.dropped == {"no_chosen": 2, "no_pit": 1}
    assert len(outcome_dpo_pairs(problems, cut, verdicts, PairConfig())) == 0
    old = step_dpo_pairs(problems, cut, verdicts, labels, PairConfig(truncated_chosen="eos"))
    assert len(old) == 2 and all(old["chosen_eos"])  # the earlier behaviour, on request
    with pytest.raises(ValueError, match="truncated_chosen"):
        PairConfig(truncated_chosen="keep")


def test_rft_trains_eos_only_on_samples_that_finished(char_tokenizer) -> None:
    # A correct sample cut by max_new_tokens never stopped: RFT must not teach the policy to stop there.
    from negrl.sft import tokenize_sft_rows

    problems = [Problem(problem_id="p", domain="math", prompt="Q\n", answer="1")]
    rollouts = [Rollout(rollout_id="p#0", problem_id="p", completion="1\n", finish_reason="stop"),
                Rollout(rollout_id="p#1", problem_id="p", completion="Answer: 1 and", finish_reason="length",
                        sample_index=1)]
    verdicts = [Verdict("p#0", True), Verdict("p#1", True)]
    rows = rft_rows(problems, rollouts, verdicts)
    assert rows["add_eos"] == [True, False]
    ids = tokenize_sft_rows(rows, char_tokenizer)["input_ids"]
    eos = char_tokenizer.eos_token_id
    assert ids[0][-1] == eos and ids[1][-1] != eos and eos not in ids[1]
