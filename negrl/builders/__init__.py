"""Dataset builders: labelled records (``Problem``/``Rollout``/``Verdict``/``StepLabels``) → TRL-column datasets.

Named by the TRL row format they emit:

- ``preference``: ``prompt`` / ``chosen`` / ``rejected`` — per-step DPO pairs (paper and shared-prefix formats) and
  outcome-level DPO pairs (Setlur et al. 2024 and its baseline).
- ``prompt_completion``: ``prompt`` / ``completion`` — RFT rows and advantage-weighted RL rows (with step spans).
- ``groups``: a problem's verified rollouts (``group_rollouts``), ``BuildStats`` and ``GeneratedTokens`` (rollouts'
  generated ids cut on token boundaries, for builders given the tokenizer), shared by every builder.
- ``bcpg``: BCPG-NSA samples (mixed groups, r − r̄, behaviour log-probs), correct steps mined in negatives, rows.
"""

from negrl.builders.bcpg import BCPGDataConfig, BCPGSample, bcpg_dataset, build_bcpg_samples, mine_correct_steps
from negrl.builders.groups import BuildStats, group_rollouts
from negrl.builders.preference import PairConfig, outcome_dpo_pairs, step_dpo_pairs
from negrl.builders.prompt_completion import AWRRowConfig, awr_rows, rft_rows


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
