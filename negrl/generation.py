"""Generation: ``Problem → Rollout`` with n samples per problem, and the batched text generator beneath it.

One interface, two backends: Hugging Face ``generate`` (default; CPU, tests) and vLLM (optional extra, GPU).
The same ``generate_texts`` call serves fresh samples, evaluation and Monte-Carlo continuations of step prefixes, so
all of them are batched the same way:

- prompts are sorted by token length and cut into chunks of ``batch_size`` (length bucketing: short and long prompts
  do not pad each other; measured in ``reference/feasibility.md`` §3, chunks of 128–256 beat one giant call 2–3×
  on CPU because the dynamic KV cache grows by concatenation and one long sequence keeps the whole batch decoding);
- left padding, a ``max_new_tokens`` limit, stop strings (cut from the returned text), ``<eos>``;
- seeded sampling: the same prompts, config and seed give the same texts, whatever else ran before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from negrl.records import Problem, Rollout


@dataclass
class GenerationConfig:
    """Sampling settings.

    Attributes:
        num_samples: Completions per problem.
        temperature: 0 means greedy decoding.
        top_p: Nucleus sampling (1.0 = off: true ancestral sampling, which log-prob-based methods assume).
        top_k: Top-k sampling (``None`` = off).
        max_new_tokens: Hard cap on generated tokens; a completion that hits it has ``finish_reason="length"``.
        batch_size: Sequences per ``generate`` call (HF backend).
        stop: Stop strings; generation of a sequence ends at the first one, which is cut from the text.
        seed: Base seed; each chunk is seeded from it and the chunk's position, so results are reproducible.
        backend: ``"hf"`` or ``"vllm"``.
        use_chat_template: Wrap each prompt as a user turn with the tokenizer's chat template (instruct models).
        show_progress: Show a progress bar over chunks.
    """

    num_samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    max_new_tokens: int = 64
    batch_size: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    backend: str = "hf"
    use_chat_template: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"backend must be 'hf' or 'vllm', got {self.backend!r}")
        if self.num_samples < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("num_samples, batch_size and max_new_tokens must be positive")


@dataclass
class Generated:
    """One generated continuation: text (stop string removed) and why it ended (``"stop"`` or ``"length"``)."""

    text: str
    finish_reason: str


class _StopOnStrings(StoppingCriteria):
    """Per-sequence stop when the newly generated text contains one of ``stops`` (checked on a short tail)."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.prompt_len = prompt_len
        self.tail = max(len(s) for s in stops) + 2  # tokens: at least one char each

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_len :][:, -self.tail :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


def format_prompt(prompt: str, tokenizer: Any, use_chat_template: bool) -> str:
    """The text fed to the model: the raw prompt, or the prompt as a user turn of the chat template."""
    if not use_chat_template:
        return prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("use_chat_template=True but the tokenizer has no chat template")
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@torch.no_grad()
def _generate_chunk(model: Any, tokenizer: Any, texts: list[str], config: GenerationConfig, seed: int) -> list[Generated]:
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    prompt_len = enc["input_ids"].shape[1]
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if config.temperature > 0:
        kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=config.top_k or 0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if config.stop:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnStrings(tokenizer, config.stop, prompt_len)])
    torch.manual_seed(seed)
    out = model.generate(**enc, **kwargs)
    new_tokens = out[:, prompt_len:]
    results = []
    for row in new_tokens:
        ended_eos = bool((row == tokenizer.eos_token_id).any())
        text = tokenizer.decode(row, skip_special_tokens=True)
        text, stopped = _cut_at_stop(text, config.stop)
        results.append(Generated(text=text, finish_reason="stop" if ended_eos or stopped else "length"))
    return results


def generate_texts(prompts: Sequence[str], model: Any, tokenizer: Any, config: GenerationConfig) -> list[Generated]:
    """Continue each prompt once (``config.num_samples`` is ignored here), batched and length-bucketed.

    Returns one ``Generated`` per prompt, in the input order. Deterministic for the same prompts, config and seed.
    """
    if config.backend == "vllm":
        from negrl.vllm_backend import generate_texts_vllm

        return generate_texts_vllm(prompts, model, tokenizer, config)
    if not prompts:
        return []
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]  # one batched call
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    results: list[Generated | None] = [None] * len(prompts)
    n_chunks = math.ceil(len(prompts) / config.batch_size)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(prompts), desc="generate", unit="seq", disable=not config.show_progress or n_chunks < 2)
    for c in range(n_chunks):
        idx = order[c * config.batch_size : (c + 1) * config.batch_size]
        chunk = _generate_chunk(model, tokenizer, [prompts[i] for i in idx], config, seed=config.seed * 100_003 + c)
        for i, g in zip(idx, chunk):
            results[i] = g
        bar.update(len(idx))
    bar.close()
    model.train(was_training)
    return results  # type: ignore[return-value]


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
        )
        for (p, k, _), g in zip(flat, generated)
    ]
