"""Step segmentation and step correctness: Monte-Carlo values, a PRM, an LLM judge, the exact oracle, consensus.

- ``segment``: ``segment(completion, rule="lines")`` → ``list[Step]`` (texts join back to the completion).
- ``monte_carlo``: ``label_monte_carlo(problems, rollouts, verdicts, model, tokenizer, MonteCarloConfig(...))``.
- ``prm``: ``PRMConfig`` / ``train_prm`` / ``PRMScorer`` (per-step probabilities, thresholded at λ).
- ``judge``: ``LLMJudge`` / ``HTTPJudge`` (LLM judges), ``OracleJudge`` (exact checker of embedded tasks).
- ``consensus``: ``combine`` (``and`` / ``or`` / ``vote``), ``agreement``, ``first_error_metrics``.
- ``sources``: ``label_steps(source, ...)``, the one dispatcher over ``mc | prm | judge | oracle | consensus``,
  cached by the settings that decide the labels.
- ``stepwise``: export to / import from TRL's stepwise-supervision rows (``prompt``, ``completions``, ``labels``).

Every source returns ``negrl.records.StepLabels`` (``source`` = ``"mc"``, ``"prm"``, ``"judge"``, ``"oracle"``,
``"consensus"``); ``None`` labels mean unknown, never wrong. Heavy modules (torch, transformers) are imported lazily.
"""

from negrl.steps.consensus import agreement, agreement_table, combine, combine_labels, first_error_metrics
from negrl.steps.segment import SEGMENTERS, segment


__all__ = [
    "SEGMENTERS", "agreement", "agreement_table", "combine", "combine_labels", "first_error_metrics", "segment",
]
