"""Dataset builders: labelled records (``Problem``/``Rollout``/``Verdict``/``StepLabels``) → TRL-column datasets.

- ``step_dpo``: per-step DPO pairs (paper and shared-prefix formats), outcome-level DPO pairs, RFT rows and
  advantage-weighted RL rows (Setlur et al. 2024 and its baselines).
- ``bcpg``: BCPG-NSA samples (mixed groups, r − r̄, behaviour log-probs), correct steps mined in negatives, rows.
"""

from negrl.builders.bcpg import BCPGDataConfig, BCPGSample, bcpg_dataset, build_bcpg_samples, mine_correct_steps
from negrl.builders.step_dpo import (
    AWRRowConfig,
    BuildStats,
    PairConfig,
    awr_rows,
    group_rollouts,
    outcome_dpo_pairs,
    rft_rows,
    step_dpo_pairs,
)


__all__ = [
    "BCPGDataConfig",
    "BCPGSample",
    "bcpg_dataset",
    "build_bcpg_samples",
    "mine_correct_steps",
    "AWRRowConfig",
    "BuildStats",
    "PairConfig",
    "awr_rows",
    "group_rollouts",
    "outcome_dpo_pairs",
    "rft_rows",
    "step_dpo_pairs",
]
