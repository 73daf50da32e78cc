"""Pure tensor losses of negrl's methods (torch only; no trainer, model or tokenizer state).

Each function documents its tensor shapes and the paper equation it implements, and is tested with hand-worked
numbers in ``tests/test_losses.py``. Trainers call these; they never re-implement them.

Sections: per-step DPO / advantage-weighted RL (Setlur et al.) · BCPG-NSA · Likra.
"""

from __future__ import annotations



# ---------------------------------------------------------------------------------------------------------------
# Per-step DPO and advantage-weighted RL (Setlur et al. 2024, arXiv 2406.14532)
# ---------------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------------
# BCPG-NSA (arXiv 2505.14403, Eqs. 6-7)
# ---------------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------------
# Likra (Hamdan & Yuret 2025, arXiv 2503.14391)
# ---------------------------------------------------------------------------------------------------------------
