"""Pure tensor losses of negrl's methods (torch only; no trainer, model or tokenizer state).

Each function documents its tensor shapes and the paper equation it implements, and is tested with hand-worked
numbers in ``tests/test_losses.py``. Trainers call these; they never re-implement them.

Sections: per-step DPO / advantage-weighted RL / bounded negatives (Setlur et al.) · BCPG-NSA · Likra.
"""

from __future__ import annotations

import torch


# ---------------------------------------------------------------------------------------------------------------
# Per-step DPO and advantage-weighted RL (Setlur et al. 2024, arXiv 2406.14532)
# ---------------------------------------------------------------------------------------------------------------


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-pair sigmoid DPO loss (Setlur et al. §5: DPO with ``π_ref = π_sft``).

    ``L = -log σ(β·[(log π(y⁺|x) - log π_ref(y⁺|x)) - (log π(y⁻|x) - log π_ref(y⁻|x))])``

    For per-step DPO ``y⁻`` is the negative truncated right after its critical step (no EOS), so the loss pushes
    down "take this step", not "stop here". Each input is a summed sequence log-prob of shape ``(B,)``; returns the
    per-pair loss ``(B,)`` (the caller averages). ``StepDPOTrainer`` keeps TRL's ``loss_type="sigmoid"``, which
    computes exactly this; ``tests/test_trainers_step.py`` checks that the two agree.
    """
    if beta <= 0:
        raise ValueError(f"DPO beta must be positive, got {beta}")
    logits = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)  # (B,)
    return -torch.nn.functional.logsigmoid(beta * logits)  # (B,)


def awr_weights(
    token_advantages: torch.Tensor, beta: float, weighting: str = "exp", max_weight: float = 20.0
) -> torch.Tensor:
    """Per-token weights of advantage-weighted RL from per-token advantages ``(B, T)``.

    - ``"exp"`` (default; Setlur et al. Eq. 4 / Theorem 6.1, standard AWR): ``w = min(exp(A/β), max_weight)``.
      Always positive: the optimum of this weighted likelihood over samples of ``π_sft`` is
      ``π*(y_i|·) ∝ π_sft(y_i|·)·exp(A/β)``, so a pit step (``A < 0``) is down-weighted relative to the other
      steps rather than pushed down directly. The clip is not stated by the paper; it bounds the variance.
    - ``"linear"``: ``w = clip(A/β, -max_weight, max_weight)`` (advantage-weighted policy gradient: negative
      advantages push log-probs down; unbounded below, so keep the learning rate small).
    """
    if beta <= 0:
        raise ValueError(f"AWR beta must be positive, got {beta}")
    if weighting == "exp":
        return torch.exp(token_advantages / beta).clamp(max=max_weight)  # (B, T)
    if weighting == "linear":
        return (token_advantages / beta).clamp(-max_weight, max_weight)  # (B, T)
    raise ValueError(f"unknown AWR weighting {weighting!r}; use 'exp' or 'linear'")


def awr_loss(
    token_logps: torch.Tensor,
    token_advantages: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    weighting: str = "exp",
    max_weight: float = 20.0,
) -> torch.Tensor:
    """Advantage-weighted RL loss (Setlur et al. Eq. 4): ``-Σ_t w_t·log π(y_t|…)·m_t / Σ_t m_t``.

    Args:
        token_logps: ``(B, T)`` log-probs of the completion tokens under the policy.
        token_advantages: ``(B, T)`` per-token advantages: every token of step ``i`` carries ``A_i = V_i - V_{i-1}``.
        mask: ``(B, T)`` 1 on completion tokens, 0 on prompt and padding.
        beta: Temperature of the weights (see ``awr_weights``).

    Returns:
        A scalar: the token-mean weighted negative log-likelihood of the batch. The weights are constants (no
        gradient flows through the advantages).
    """
    mask = mask.to(token_logps.dtype)
    weights = awr_weights(token_advantages.detach().to(token_logps.dtype), beta, weighting, max_weight)  # (B, T)
    return -(weights * token_logps * mask).sum() / mask.sum().clamp(min=1.0)


def bounded_sign_loss(
    token_logps: torch.Tensor, mask: torch.Tensor, sign: torch.Tensor, coef: float = 0.1, scale: float = 0.1
) -> torch.Tensor:
    """A bounded term on the policy's own samples: ``coef · mean_i(sign_i · σ(scale · CE_i))``.

    ``CE_i = -Σ_t log π(y_it|…)·m_it / Σ_t m_it`` is the token-mean cross-entropy of row ``i``'s scored tokens
    (a correct sample: its completion; a wrong one: its critical step). Minimising it lowers the CE of correct rows
    (``sign = +1``) and raises that of wrong ones (``sign = -1``), with a push that fades as ``σ`` saturates: unlike
    ``-log π`` of a negative (unlearning), it cannot drive a wrong step's probability to 0 without bound. This is the
    bounded form of Setlur et al.'s exploratory on-policy code (``loss + 0.1·mean(sign·σ(0.1·CE))``; there the
    ``loss`` is the NLL of the correct samples, here ``negative_sample_loss`` adds it).

    Args:
        token_logps: ``(B, T)`` log-probs of the tokens under the policy.
        mask: ``(B, T)`` 1 on the row's scored tokens.
        sign: ``(B,)`` +1 (correct), -1 (wrong), 0 (row left out of the mean).

    Returns:
        A scalar: the mean over rows with ``sign != 0`` (0 when there are none).
    """
    mask = mask.to(token_logps.dtype)
    ce = -(token_logps * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # (B,)
    used = sign != 0  # (B,)
    if not used.any():
        return token_logps.sum() * 0.0
    return coef * (sign[used].to(ce.dtype) * torch.sigmoid(scale * ce[used])).mean()


def negative_sample_loss(
    token_logps: torch.Tensor,
    token_signs: torch.Tensor,
    mask: torch.Tensor,
    coef: float = 0.1,
    scale: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positives' NLL plus the bounded negative term (``bounded_sign_loss``) on the critical steps of negatives.

    ``token_signs`` ``(B, T)``: +1 on the tokens of a correct sample (NLL and the bounded term), -1 on the critical
    step of a wrong one (bounded term only), 0 elsewhere. A row is either positive or negative. Returns
    ``(loss, nll, bounded)``: ``nll`` is the token mean over positive tokens (0 without any), ``bounded`` the term
    over every row with a signed token.
    """
    mask = mask.to(token_logps.dtype)
    pos = (token_signs > 0).to(token_logps.dtype) * mask  # (B, T)
    neg = (token_signs < 0).to(token_logps.dtype) * mask  # (B, T)
    nll = -(token_logps * pos).sum() / pos.sum().clamp(min=1.0)
    row_sign = (pos.sum(-1) > 0).to(token_logps.dtype) - (neg.sum(-1) > 0).to(token_logps.dtype)  # (B,)
    bounded = bounded_sign_loss(token_logps, pos + neg, row_sign, coef, scale)
    return nll + bounded, nll, bounded


# ---------------------------------------------------------------------------------------------------------------
# BCPG-NSA (arXiv 2505.14403, Eqs. 6-7)
# ---------------------------------------------------------------------------------------------------------------

BCPG_NORMALIZATIONS = ("sequence", "token_mean")


def nsa_token_weights(is_negative: torch.Tensor, in_correct_step: torch.Tensor, beta: float) -> torch.Tensor:
    """BCPG-NSA token weights (Eq. 7): ``β`` on tokens of steps judged correct inside a *negative*, else 1.

    Args:
        is_negative: ``(B,)`` bool, the sample's final answer is wrong (``r_i < r̄``).
        in_correct_step: ``(B, T)`` bool, the token lies in a step labelled correct.
        beta: ``β ∈ [-1, 1]``; 1 is plain BCPG, ``β < 0`` rewards mined correct steps of negatives.

    Returns:
        ``(B, T)`` float weights.
    """
    if not -1.0 <= beta <= 1.0:
        raise ValueError(f"BCPG-NSA beta must lie in [-1, 1], got {beta}")
    mined = is_negative[:, None] & in_correct_step  # (B, T)
    return torch.where(mined, torch.full_like(in_correct_step, beta, dtype=torch.float32), 1.0)


def bcpg_nsa_loss(
    token_logps: torch.Tensor,
    mask: torch.Tensor,
    token_weights: torch.Tensor,
    advantages: torch.Tensor,
    ref_logps: torch.Tensor,
    tau: float = 1e-3,
    normalization: str = "sequence",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Negated BCPG-NSA objective (arXiv 2505.14403, Eq. 6), averaged over the batch.

    Per sample ``i`` with ``|y_i|`` completion tokens and sequence log-ratio
    ``δ_i = log π(y_i|x) − log π_ref(y_i|x) = Σ_j log π(y_ij|…) − ref_logps_i``:

        ``J_i = (1/|y_i|)·[Σ_j β_ij·(r_i − r̄)·log π(y_ij|…) − (τ/2)·δ_i²]``,  ``loss = −mean_i J_i``.

    ``normalization="sequence"`` is the paper's form (both terms divided by each sample's ``|y_i|``, then the mean
    over samples). ``"token_mean"`` divides the batch sums by the batch's total completion-token count instead
    (DAPO-style: long samples weigh more). ``δ_i`` is always the *sequence-level* log-ratio, as in the paper; the
    ``τ`` term has gradient ``−τ·δ_i·∇log π(y_i|x)/|y_i|``, a pull back towards the behaviour policy.

    Args:
        token_logps: ``(B, T)`` log-probs of completion tokens under the policy (any values where ``mask`` is 0).
        mask: ``(B, T)`` 1 on completion tokens, 0 on prompt and padding.
        token_weights: ``(B, T)`` ``β_ij`` (see ``nsa_token_weights``; 0 or anything where ``mask`` is 0).
        advantages: ``(B,)`` ``r_i − r̄`` (group-mean baseline over the problem's whole group).
        ref_logps: ``(B,)`` ``log π_ref(y_i|x)``, precomputed with the behaviour policy.
        tau: Behaviour-constraint factor ``τ`` (paper: 1e-3).
        normalization: ``"sequence"`` (paper) or ``"token_mean"``.

    Returns:
        ``(loss, metrics)``: a scalar to minimise and detached ``pg_loss``, ``kl_penalty`` (the ``τ`` part, both
        normalised like the loss), ``log_ratio`` (mean ``δ_i``).
    """
    if normalization not in BCPG_NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; expected one of {BCPG_NORMALIZATIONS}")
    mask = mask.to(token_logps.dtype)
    logps = token_logps * mask  # (B, T); zero outside the completion
    seq_logps = logps.sum(-1)  # (B,)
    log_ratio = seq_logps - ref_logps.to(logps.dtype)  # (B,)
    pg = (token_weights.to(logps.dtype) * mask * logps).sum(-1) * advantages.to(logps.dtype)  # (B,)
    penalty = 0.5 * tau * log_ratio.pow(2)  # (B,)
    lengths = mask.sum(-1)  # (B,)
    if normalization == "sequence":
        pg_term = (pg / lengths.clamp(min=1.0)).mean()
        penalty_term = (penalty / lengths.clamp(min=1.0)).mean()
    else:
        total = lengths.sum().clamp(min=1.0)
        pg_term, penalty_term = pg.sum() / total, penalty.sum() / total
    loss = -(pg_term - penalty_term)
    metrics = {
        "pg_loss": -pg_term.detach(),
        "kl_penalty": penalty_term.detach(),
        "log_ratio": log_ratio.detach().mean(),
    }
    return loss, metrics



# ---------------------------------------------------------------------------------------------------------------
# Likra (Hamdan & Yuret 2025, arXiv 2503.14391)
# ---------------------------------------------------------------------------------------------------------------

LIKRA_MODES = ("likra", "sft", "base_likra", "pos_base", "base")


def likra_head_weights(mode: str, w: float = 1.0) -> dict[str, float]:
    """Weights of each head's log-likelihood in a Likra score (paper Eq. 2; reference code ``HYDRA_MODE``).

    ``likra``: pos − w·neg · ``sft``: pos only · ``base_likra``: base − w·neg (no positive training) ·
    ``pos_base``: pos − w·base · ``base``: the base model alone. Heads are named ``"pos"``, ``"neg"`` and
    ``"base"`` (adapters disabled).
    """
    table = {
        "likra": {"pos": 1.0, "neg": -w},
        "sft": {"pos": 1.0},
        "base_likra": {"base": 1.0, "neg": -w},
        "pos_base": {"pos": 1.0, "base": -w},
        "base": {"base": 1.0},
    }
    if mode not in table:
        raise ValueError(f"unknown Likra mode {mode!r}; expected one of {LIKRA_MODES}")
    return table[mode]


def likra_scores(
    logps: dict[str, torch.Tensor], mode: str = "likra", w: float = 1.0, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Combine per-candidate answer log-likelihoods of the heads into Likra scores.

    Args:
        logps: head name → summed log p(answer | question) per candidate, each ``(N,)``.
        mode: One of ``LIKRA_MODES`` (see ``likra_head_weights``).
        w: Weight of the subtracted head (the paper's ``-w₋``; default 1).
        lengths: ``(N,)`` lengths of the candidates; when given, the score is divided by them (``acc_norm``; which
            length is ``negrl.likra.scoring.option_lengths``'s choice).

    Returns:
        ``(N,)`` scores; the prediction for a question is the argmax over its candidates.
    """
    weights = likra_head_weights(mode, w)
    missing = set(weights) - set(logps)
    if missing:
        raise ValueError(f"mode {mode!r} needs head(s) {sorted(missing)}; got {sorted(logps)}")
    score = sum(c * logps[h] for h, c in weights.items())  # (N,)
    if lengths is not None:
        score = score / lengths.clamp(min=1).to(score.dtype)
    return score  # type: ignore[return-value]


def choice_predictions(scores: torch.Tensor, group_sizes: list[int]) -> torch.Tensor:
    """Index of the best candidate within each question: ``scores (ΣK,)`` split into groups → ``(Q,)``."""
    return torch.stack([g.argmax() for g in torch.split(scores, group_sizes)])


# ---------------------------------------------------------------------------------------------------------------
# Process reward model (negrl.steps.prm): per-step correctness from two label-token logits
# ---------------------------------------------------------------------------------------------------------------


def prm_step_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of step correctness read from the logits of a "+" and a "-" token.

    The PRM's ``P(step correct) = softmax([pos, neg])[0] = sigmoid(pos − neg)`` at the last token of the step
    (Math-Shepherd-style label tokens on a causal LM head).

    Args:
        pos_logits, neg_logits: ``(N,)`` logits of the positive / negative label token at the N scored positions.
        targets: ``(N,)`` in [0, 1]: hard labels (0/1) or soft Monte-Carlo values.
    """
    margin = pos_logits - neg_logits  # (N,)
    return torch.nn.functional.binary_cross_entropy_with_logits(margin, targets.to(margin.dtype))
