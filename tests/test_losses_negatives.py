"""RFT + bounded negatives: the loss with hand-worked numbers, the rows, and the paired interval of the rounds report."""

from __future__ import annotations

import math

import pytest
import torch

from negrl.builders.negative import negative_rows
from negrl.losses import bounded_sign_loss, negative_sample_loss
from negrl.metrics import paired_difference, t975
from negrl.records import Problem, Rollout, Step, StepLabels, Verdict


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_bounded_sign_loss_hand_worked() -> None:
    # row 0 (correct): logps -1, -3 -> CE 2; row 1 (wrong): one scored token, logp -4 -> CE 4; row 2: sign 0.
    logps = torch.tensor([[-1.0, -3.0], [-9.0, -4.0], [-1.0, -1.0]])
    mask = torch.tensor([[1, 1], [0, 1], [1, 1]])
    sign = torch.tensor([1.0, -1.0, 0.0])
    got = bounded_sign_loss(logps, mask, sign, coef=0.5, scale=0.25)
    want = 0.5 * (_sig(0.25 * 2.0) - _sig(0.25 * 4.0)) / 2
    assert got.item() == pytest.approx(want, abs=1e-6)


def test_bounded_term_pushes_a_negative_down_and_fades() -> None:
    # d/dlogp of -c·σ(s·CE) with CE = -logp: c·s·σ'(s·CE) > 0, so gradient descent lowers logp; smaller at large CE.
    grads = []
    for logp0 in (-1.0, -40.0):
        logp = torch.tensor([[logp0]], requires_grad=True)
        bounded_sign_loss(logp, torch.ones(1, 1), torch.tensor([-1.0]), coef=1.0, scale=1.0).backward()
        grads.append(logp.grad.item())
    assert grads[0] > 0 and abs(grads[1]) < 1e-6  # saturated: no push on an already-unlikely step
    assert grads[0] == pytest.approx(_sig(1.0) * (1 - _sig(1.0)), rel=1e-5)


def test_negative_sample_loss_splits_positive_nll_and_bounded_term() -> None:
    logps = torch.tensor([[-1.0, -3.0, -2.0], [-5.0, -6.0, -7.0]])
    signs = torch.tensor([[1.0, 1.0, 0.0], [0.0, -1.0, -1.0]])  # row 0 positive (2 tokens), row 1: critical step
    mask = torch.ones(2, 3)
    loss, nll, bounded = negative_sample_loss(logps, signs, mask, coef=0.1, scale=0.1)
    assert nll.item() == pytest.approx(2.0)  # (1 + 3) / 2: only positive tokens
    want_b = 0.1 * (_sig(0.1 * 2.0) - _sig(0.1 * 6.5)) / 2  # CE row 0 = 2, row 1 = (6 + 7) / 2
    assert bounded.item() == pytest.approx(want_b, abs=1e-6)
    assert loss.item() == pytest.approx(2.0 + want_b, abs=1e-6)


def test_negative_rows_keep_positives_and_critical_steps_of_all_wrong_prompts() -> None:
    problems = [Problem(problem_id=p, domain="math", prompt=f"{p}?", answer="1") for p in ("a", "b")]
    rollouts = [Rollout(rollout_id="a#0", problem_id="a", completion="x1\ny2\n"),
                Rollout(rollout_id="a#1", problem_id="a", completion="x1\nz9\n", sample_index=1),
                Rollout(rollout_id="b#0", problem_id="b", completion="p3\nq4\nr5\n"),
                Rollout(rollout_id="b#1", problem_id="b", completion="p3\nq7\n", sample_index=1)]
    verdicts = [Verdict("a#0", True), Verdict("a#1", False), Verdict("b#0", False), Verdict("b#1", False)]

    def sl(rid: str, text: str, fe: int | None) -> StepLabels:
        steps, pos = [], 0
        for line in text.splitlines(keepends=True):
            steps.append(Step(text=line, start=pos, end=pos + len(line)))
            pos += len(line)
        return StepLabels(rollout_id=rid, steps=steps, values=[None] * len(steps), labels=[None] * len(steps),
                          first_error=fe, source="mc")

    labels = [sl("a#1", "x1\nz9\n", 1), sl("b#0", "p3\nq4\nr5\n", 1), sl("b#1", "p3\nq7\n", None)]
    from negrl.builders.groups import BuildStats

    stats = BuildStats()
    rows = negative_rows(problems, rollouts, verdicts, labels, stats=stats)
    got = {(r["problem_id"], r["completion"], r["correct"], r["add_eos"], tuple(map(tuple, r["spans"])))
           for r in rows}
    assert got == {("a", "x1\ny2\n", True, True, ((0, 6, 1.0),)),
                   ("b", "p3\nq4\n", False, False, ((3, 6, -1.0),))}
    assert stats.dropped == {"has_positive": 1, "no_pit": 1} and stats.kept == 2
    every = negative_rows(problems, rollouts, verdicts, labels, prompts="all")
    assert ("a", "x1\nz9\n") in {(r["problem_id"], r["completion"]) for r in every}
    with pytest.raises(ValueError, match="prompts must be one of"):
        negative_rows(problems, rollouts, verdicts, labels, prompts="some")


def test_paired_difference_hand_worked() -> None:
    d = paired_difference([0.5, 0.6, 0.7], [0.4, 0.45, 0.5])  # diffs .10 .15 .20: sd .05
    assert d.mean == pytest.approx(0.15)
    half = 4.303 * 0.05 / math.sqrt(3)
    assert (d.lo, d.hi) == (pytest.approx(0.15 - half), pytest.approx(0.15 + half))
    assert d.excludes_zero and d.format() == "+15.0 [+2.6, +27.4]"
    one = paired_difference([0.5], [0.4])
    assert math.isnan(one.lo) and not one.excludes_zero and one.format() == "+10.0 (1 seed)"
    assert not paired_difference([0.5, 0.4], [0.4, 0.5]).excludes_zero
    assert t975(2) == 4.303 and t975(1000) == pytest.approx(1.962, abs=1e-3)
    with pytest.raises(ValueError, match="one value per seed"):
        paired_difference([0.1, 0.2], [0.1])
