"""Generation: ``Problem → Rollout`` with n samples per problem, and the batched sampler beneath it.

One interface, two backends: Hugging Face ``generate`` (default; CPU, tests; ``negrl.generation.hf``) and vLLM
(optional extra, GPU; ``negrl.generation.vllm``). The same calls serve fresh samples, evaluation and Monte-Carlo
continuations of step prefixes, so all of them are batched the same way:

- ``generate_texts(prompts, ...)``: one continuation per prompt;
- ``generate_samples(prompts, counts, ...)``: ``counts[i]`` continuations of prompt ``i`` — the prompt is prefilled
  once for all of them (HF: one KV cache repeated; vLLM: one request with ``n`` samples and prefix caching);
- ``generate_rollouts(problems, ...)``: ``config.num_samples`` completions per problem as ``Rollout`` records.

A prompt is text or a list of token ids (``Prompt``); each ``Generated`` carries its text and generated ids. A text
prompt is the whole model input, encoded without special tokens by both backends; ``format_prompt`` builds it for
every stage, with the tokenizer's BOS exactly once where the tokenizer adds one (``with_bos``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from negrl.generation.config import (
    Generated,
    GenerationConfig,
    GenerationStats,
    Prompt,
    cut_at_stop,
    encode_prompts,
    format_prompt,
    tokenizer_adds_bos,
    with_bos,
)
from negrl.generation.hf import generate_hf
from negrl.generation.vllm import generate_vllm
from negrl.records import Problem, Rollout


__all__ = [
    "Generated", "GenerationConfig", "GenerationStats", "Prompt", "cut_at_stop", "encode_prompts", "format_prompt", "generate_rollouts",
    "generate_samples", "generate_texts", "tokenizer_adds_bos", "with_bos",
]


def generate_samples(
    prompts: Sequence[Prompt], counts: Sequence[int], model: Any, tokenizer: Any, config: GenerationConfig,
    share_prefill: bool = True, stats: GenerationStats | None = None,
) -> list[list[Generated]]:
    """``counts[i]`` continuations of ``prompts[i]``, one list per prompt, in input order (``num_samples`` ignored).

    ``share_prefill`` (HF backend): a prompt's samples are decoded from one prefill of it; vLLM always shares
    (prefix caching). ``stats`` (HF backend) counts the work done.
    """
    if config.backend == "vllm":
        return generate_vllm(prompts, model, tokenizer, config, counts)
    return generate_hf(prompts, model, tokenizer, config, counts, share_prefill=share_prefill, stats=stats)


def generate_texts(prompts: Sequence[Prompt], model: Any, tokenizer: Any, config: GenerationConfig) -> list[Generated]:
    """Continue each prompt once (``config.num_samples`` is ignored here), batched and length-bucketed.

    Returns one ``Generated`` per prompt, in the input order. Deterministic for the same prompts, config and seed.
    """
    return [g[0] for g in generate_samples(prompts, [1] * len(prompts), model, tokenizer, config)]


def generate_rollouts(
    problems: Sequence[Problem], model: Any, tokenizer: Any, config: GenerationConfig, model_name: str = ""
) -> list[Rollout]:
    """Sample ``config.num_samples`` completions per problem.

    Rollout ids are ``"{problem_id}#{k}"``. For the same problems, config and seed the output is identical.
    """
    texts = [format_prompt(p.prompt, tokenizer, config.use_chat_template) for p in problems]
    flat = [(p, k, t) for p, t in zip(problems, texts) for k in range(config.num_samples)]
    generated = generate_texts([t for _, _, t in flat], model, tokenizer, config)
    name = model_name or str(getattr(model, "name_or_path", "") or "")
    return [
        Rollout(
            rollout_id=f"{p.problem_id}#{k}",
            problem_id=p.problem_id,
            completion=g.text,
            finish_reason=g.finish_reason,
            model=name,
            sample_index=k,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
            completion_ids=g.token_ids or None,
        )
        for (p, k, _), g in zip(flat, generated)
    ]
