"""Per-step DPO and advantage-weighted RL losses against hand-worked numbers."""

from __future__ import annotations

import math

import pytest
import torch

from negrl.losses import awr_loss, awr_weights, dpo_loss


def test_dpo_loss_hand_worked():
    # Pair 1: chosen log-ratio (-1) - (-2) = 1, rejected log-ratio (-3) - (-2) = -1 → margin 2; β = 0.5 → logit 1.
    # Pair 2: everything equal → logit 0 → loss log 2.
    pc = torch.tensor([-1.0, -4.0])
    pr = torch.tensor([-3.0, -5.0])
    rc = torch.tensor([-2.0, -4.0])
    rr = torch.tensor([-2.0, -5.0])
    loss = dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert loss.shape == (2,)
    assert loss[0].item() == pytest.approx(math.log(1 + math.exp(-1.0)), abs=1e-6)  # 0.313262
    assert loss[1].item() == pytest.approx(math.log(2.0), abs=1e-6)


def test_dpo_loss_gradient_pushes_chosen_up_and_rejected_down():
    pc = torch.tensor([-2.0], requires_grad=True)
    pr = torch.tensor([-2.0], requires_grad=True)
    dpo_loss(pc, pr, torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.1).sum().backward()
    # d/dpc of -log σ(β(pc - pr)) at 0 = -β·σ(0) = -0.05; rejected gets +0.05.
    assert pc.grad.item() == pytest.approx(-0.05)
    assert pr.grad.item() == pytest.approx(0.05)


def test_dpo_loss_rejects_nonpositive_beta():
    t = torch.zeros(1)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(t, t, t, t, beta=0.0)


def test_awr_weights_exp_clip_and_linear():
    adv = torch.tensor([[0.0, -0.5, 1.0, 2.0]])
    w = awr_weights(adv, beta=0.5, max_weight=5.0)
    # exp(0)=1, exp(-1)=0.3679, exp(2)=7.389→5 (clipped), exp(4)→5
    assert w.tolist()[0] == pytest.approx([1.0, math.exp(-1.0), 5.0, 5.0], rel=1e-6)
    lin = awr_weights(adv, beta=0.5, weighting="linear", max_weight=3.0)
    assert lin.tolist()[0] == pytest.approx([0.0, -1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="weighting"):
        awr_weights(adv, beta=1.0, weighting="cubic")


def test_awr_loss_hand_worked():
    # Two sequences, T=3. Row 0: tokens 0,1 in the completion; row 1: token 0 only (token 2 is padding).
    logps = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]])
    adv = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # β=1: weights 1, e^-1, e^1. Loss = -(1·-1 + e^-1·-2 + e·-0.5)/3 = (1 + 2e^-1 + 0.5e)/3
    expected = (1 + 2 * math.exp(-1) + 0.5 * math.e) / 3
    assert awr_loss(logps, adv, mask, beta=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_awr_loss_no_gradient_through_advantages_and_pit_token_gets_small_weight():
    logps = torch.tensor([[-1.0, -1.0]], requires_grad=True)
    adv = torch.tensor([[0.0, -1.0]], requires_grad=True)
    awr_loss(logps, adv, torch.ones(1, 2), beta=0.5).backward()
    assert adv.grad is None or torch.all(adv.grad == 0)
    # d loss / d logp_t = -w_t / 2: the pit token (A=-1, β=.5) gets weight e^-2, the good one weight 1.
    assert logps.grad.tolist()[0] == pytest.approx([-0.5, -math.exp(-2) / 2], rel=1e-6)
