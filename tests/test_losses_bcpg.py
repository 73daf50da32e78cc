"""BCPG-NSA loss (arXiv 2505.14403, Eq. 6) and token weights (Eq. 7) against hand-worked numbers."""

from __future__ import annotations

import pytest
import torch

from negrl.losses import bcpg_nsa_loss, nsa_token_weights


def _batch(beta: float = 0.5):
    # Sample 0: a negative (r - r̄ = -0.5) with 2 completion tokens, the 2nd in a mined correct step (weight β).
    # Sample 1: a positive (r - r̄ = +0.5) with 3 completion tokens, all weight 1.
    logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -1.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    weights = torch.tensor([[1.0, beta, 0.0], [1.0, 1.0, 1.0]])
    adv = torch.tensor([-0.5, 0.5])
    ref = torch.tensor([-2.0, -1.0])  # log-ratios: -3 - (-2) = -1 and -2 - (-1) = -1
    return logps, mask, weights, adv, ref


def test_sequence_normalisation_hand_worked():
    logps, mask, weights, adv, ref = _batch(beta=0.5)
    loss, metrics = bcpg_nsa_loss(logps, mask, weights, adv, ref, tau=0.1)
    # J0 = [(1·-1 + 0.5·-2)·(-0.5) - 0.05·1] / 2 = (1.0 - 0.05)/2 = 0.475
    # J1 = [(-2)·0.5 - 0.05] / 3 = -0.35 ;  loss = -(0.475 - 0.35)/2 = -0.0625
    assert loss.item() == pytest.approx(-0.0625)
    assert metrics["kl_penalty"].item() == pytest.approx((0.05 / 2 + 0.05 / 3) / 2)
    assert metrics["pg_loss"].item() == pytest.approx(-(0.5 - 1.0 / 3) / 2)
    assert metrics["log_ratio"].item() == pytest.approx(-1.0)


def test_token_mean_normalisation_hand_worked():
    logps, mask, weights, adv, ref = _batch(beta=0.5)
    loss, _ = bcpg_nsa_loss(logps, mask, weights, adv, ref, tau=0.1, normalization="token_mean")
    # Σ pg = 1.0 + (-1.0) = 0 ; Σ penalty = 0.1 ; 5 completion tokens → loss = -(0 - 0.1)/5 = 0.02
    assert loss.item() == pytest.approx(0.02)
    with pytest.raises(ValueError, match="normalization"):
        bcpg_nsa_loss(logps, mask, weights, adv, ref, normalization="tokens")


def test_negative_beta_rewards_mined_step_of_a_negative():
    # β = -1: J0 = [(1·-1 + (-1)·-2)·(-0.5) - 0.05]/2 = (-0.5 - 0.05)/2 = -0.275 ; J1 = -0.35
    logps, mask, weights, adv, ref = _batch(beta=-1.0)
    loss, _ = bcpg_nsa_loss(logps, mask, weights, adv, ref, tau=0.1)
    assert loss.item() == pytest.approx(-(-0.275 - 0.35) / 2)
    loss.backward()
    # d loss / d logp: -(β·A - τ·δ)/|y| / B. Token 0 of the negative: -(1·-0.5 + 0.1)/2/2 = +0.1 (pushed down);
    # mined token: -(-1·-0.5 + 0.1)/2/2 = -0.15 (pushed up: a reward); the masked token gets no gradient.
    assert logps.grad[0].tolist() == pytest.approx([0.1, -0.15, 0.0])
    # Positive sample: -(0.5 + 0.1)/3/2 = -0.1 on every token.
    assert logps.grad[1].tolist() == pytest.approx([-0.1, -0.1, -0.1])


def test_tau_term_alone_pulls_towards_behaviour_policy():
    logps, mask, weights, _, ref = _batch()
    adv = torch.zeros(2)
    loss, _ = bcpg_nsa_loss(logps, mask, weights, adv, ref, tau=0.1)
    assert loss.item() == pytest.approx((0.05 / 2 + 0.05 / 3) / 2)
    loss.backward()
    # δ = -1 < 0 (policy below behaviour): gradient τ·δ/|y|/B is negative, so descent raises the log-probs.
    assert logps.grad[0].tolist() == pytest.approx([-0.025, -0.025, 0.0])
    assert logps.grad[1].tolist() == pytest.approx([-0.1 / 6] * 3)
    loss0, _ = bcpg_nsa_loss(logps, mask, weights, adv, ref, tau=0.0)
    assert loss0.item() == 0.0


def test_beta_one_is_plain_bcpg_and_weights_follow_eq7():
    logps, mask, _, adv, ref = _batch()
    ones = torch.ones(2, 3)
    plain, _ = bcpg_nsa_loss(logps, mask, ones, adv, ref)
    nsa, _ = bcpg_nsa_loss(logps, mask, _batch(beta=1.0)[2], adv, ref)
    assert plain.item() == pytest.approx(nsa.item())
    is_negative = torch.tensor([True, False])
    in_step = torch.tensor([[False, True, True], [True, True, False]])
    w = nsa_token_weights(is_negative, in_step, beta=-0.5)
    assert w.tolist() == [[1.0, -0.5, -0.5], [1.0, 1.0, 1.0]]  # β only inside the negative
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        nsa_token_weights(is_negative, in_step, beta=1.5)
