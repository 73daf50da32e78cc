"""negrl: post-training language models with negative samples (see README.md).

The public API, imported lazily (TRL style: ``from negrl import StepDPOTrainer`` loads only what that name needs):

- records and stages: ``Problem``, ``Rollout``, ``Verdict``, ``Step``, ``StepLabels``, ``read_stage``, ``write_stage``
- problems and models: ``load_problems``, ``get_task``, ``load_policy``, ``save_policy``, ``lora_config``
- generate and verify: ``GenerationConfig``, ``generate_rollouts``, ``verify``, ``verify_rollouts``
- step labels: ``segment``, ``MonteCarloConfig``, ``label_monte_carlo``, ``LabelSettings``, ``label_steps``,
  ``PRMConfig``, ``PRMScorer``, ``train_prm``, ``LLMJudge``, ``OracleJudge``, ``combine_labels``,
  ``to_stepwise_dataset``, ``from_stepwise``
- datasets for TRL: ``PairConfig``, ``step_dpo_pairs``, ``outcome_dpo_pairs``, ``rft_rows``, ``AWRRowConfig``,
  ``awr_rows``, ``BCPGDataConfig``, ``build_bcpg_samples``, ``mine_correct_steps``, ``bcpg_dataset``
- trainers: ``StepDPOConfig`` / ``StepDPOTrainer``, ``AWRConfig`` / ``AWRTrainer``, ``BCPGNSAConfig`` /
  ``BCPGNSATrainer``, ``train_sft``, ``train_resuming``
- Likra: ``LikraConfig``, ``attach_heads``, ``train_head``, ``answer_logprobs``
- evaluation: ``evaluate_policy``

``negrl.experiments`` (paper reproductions, sweeps, the demo, config loading) is the experiment harness behind the
recipes and the ``negrl`` command: not public API, its names change with the experiments.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from negrl import processes as _processes  # noqa: F401  (registers the process-group teardown at exit)


# public name → the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Problem", "Rollout", "Verdict", "Step", "StepLabels"], "negrl.records"),
    **dict.fromkeys(["read_stage", "write_stage"], "negrl.io"),
    "load_problems": "negrl.problems",
    "get_task": "negrl.tasks",
    **dict.fromkeys(["load_policy", "save_policy"], "negrl.modeling"),
    "lora_config": "negrl.lora",
    **dict.fromkeys(["GenerationConfig", "generate_rollouts"], "negrl.generation"),
    **dict.fromkeys(["verify", "verify_rollouts"], "negrl.verifiers"),
    "segment": "negrl.steps.segment",
    **dict.fromkeys(["MonteCarloConfig", "label_monte_carlo"], "negrl.steps.monte_carlo"),
    **dict.fromkeys(["LabelSettings", "label_steps"], "negrl.steps.sources"),
    **dict.fromkeys(["PRMConfig", "PRMScorer", "train_prm"], "negrl.steps.prm"),
    **dict.fromkeys(["LLMJudge", "OracleJudge"], "negrl.steps.judge"),
    "combine_labels": "negrl.steps.consensus",
    **dict.fromkeys(["to_stepwise_dataset", "from_stepwise"], "negrl.steps.stepwise"),
    **dict.fromkeys(["PairConfig", "step_dpo_pairs", "outcome_dpo_pairs"], "negrl.builders.preference"),
    **dict.fromkeys(["rft_rows", "AWRRowConfig", "awr_rows"], "negrl.builders.prompt_completion"),
    **dict.fromkeys(["BCPGDataConfig", "build_bcpg_samples", "mine_correct_steps", "bcpg_dataset"],
                    "negrl.builders.bcpg"),
    **dict.fromkeys(["StepDPOConfig", "StepDPOTrainer"], "negrl.trainers.step_dpo"),
    **dict.fromkeys(["AWRConfig", "AWRTrainer"], "negrl.trainers.awr"),
    **dict.fromkeys(["BCPGNSAConfig", "BCPGNSATrainer"], "negrl.trainers.bcpg_nsa"),
    "train_sft": "negrl.sft",
    "train_resuming": "negrl.trainers.resume",
    **dict.fromkeys(["LikraConfig", "attach_heads", "train_head"], "negrl.likra.heads"),
    "answer_logprobs": "negrl.likra.scoring",
    "evaluate_policy": "negrl.evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """PEP 562: import a public name's module on first use (torch / transformers load only when needed)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'negrl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from negrl.builders.bcpg import BCPGDataConfig, bcpg_dataset, build_bcpg_samples, mine_correct_steps
    from negrl.builders.preference import PairConfig, outcome_dpo_pairs, step_dpo_pairs
    from negrl.builders.prompt_completion import AWRRowConfig, awr_rows, rft_rows
    from negrl.evaluation import evaluate_policy
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.io import read_stage, write_stage
    from negrl.likra.heads import LikraConfig, attach_heads, train_head
    from negrl.likra.scoring import answer_logprobs
    from negrl.lora import lora_config
    from negrl.modeling import load_policy, save_policy
    from negrl.problems import load_problems
    from negrl.records import Problem, Rollout, Step, StepLabels, Verdict
    from negrl.sft import train_sft
    from negrl.steps.consensus import combine_labels
    from negrl.steps.judge import LLMJudge, OracleJudge
    from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo
    from negrl.steps.prm import PRMConfig, PRMScorer, train_prm
    from negrl.steps.segment import segment
    from negrl.steps.sources import LabelSettings, label_steps
    from negrl.steps.stepwise import from_stepwise, to_stepwise_dataset
    from negrl.tasks import get_task
    from negrl.trainers.awr import AWRConfig, AWRTrainer
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer
    from negrl.trainers.resume import train_resuming
    from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer
    from negrl.verifiers import verify, verify_rollouts
