"""Held-out accuracy of a policy: generate → verify → mean, the same code path as training-time verification."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from negrl.generation import GenerationConfig, generate_rollouts
from negrl.records import Problem, Rollout, Verdict
from negrl.verifiers import verify_rollouts


@dataclass
class Accuracy:
    """Accuracy over verifiable rollouts (``correct is None`` counts as neither right nor wrong)."""

    correct: int
    total: int
    unverifiable: int = 0

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    @property
    def stderr(self) -> float:
        p = self.value
        return math.sqrt(p * (1 - p) / self.total) if self.total else float("nan")

    def __str__(self) -> str:
        return f"{100 * self.value:.1f}% ± {100 * self.stderr:.1f} (n={self.total})"


def accuracy(verdicts: Sequence[Verdict]) -> Accuracy:
    known = [v.correct for v in verdicts if v.correct is not None]
    return Accuracy(correct=sum(known), total=len(known), unverifiable=len(verdicts) - len(known))


@dataclass
class PolicyEval:
    greedy: Accuracy
    sampled: Accuracy
    rollouts: list[Rollout]
    verdicts: list[Verdict]

    def as_dict(self) -> dict[str, float]:
        return {"greedy": self.greedy.value, "sampled": self.sampled.value, "n": self.greedy.total}


def evaluate_policy(
    problems: Sequence[Problem],
    model: Any,
    tokenizer: Any,
    max_new_tokens: int = 64,
    samples: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    show_progress: bool = False,
    use_chat_template: bool = False,
    backend: str = "hf",
) -> PolicyEval:
    """Greedy accuracy and sampled accuracy (``samples`` draws per problem at ``temperature``) on ``problems``.

    ``use_chat_template`` must be the flag the policy was sampled and trained with: generation builds each prompt
    with ``negrl.generation.format_prompt``, the one prompt builder of every stage, so a policy trained on
    chat-formatted prompts is evaluated on the same strings rather than on raw questions. ``backend``: that of
    ``negrl.generation`` (``"vllm"``: ``model`` is a ``vllm.LLM``, a ``VLLMPolicy`` or a model path).
    """
    base = GenerationConfig(
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, show_progress=show_progress,
        use_chat_template=use_chat_template, backend=backend,
    )
    greedy_rollouts = generate_rollouts(problems, model, tokenizer, replace(base, temperature=0.0))
    sampled_rollouts = generate_rollouts(
        problems, model, tokenizer, replace(base, temperature=temperature, num_samples=samples)
    )
    greedy_verdicts = verify_rollouts(problems, greedy_rollouts)
    sampled_verdicts = verify_rollouts(problems, sampled_rollouts)
    return PolicyEval(
        greedy=accuracy(greedy_verdicts),
        sampled=accuracy(sampled_verdicts),
        rollouts=greedy_rollouts + sampled_rollouts,
        verdicts=greedy_verdicts + sampled_verdicts,
    )
