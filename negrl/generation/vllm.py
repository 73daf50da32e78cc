"""vLLM behind ``negrl.generation``'s interface (``GenerationConfig(backend="vllm")``; GPU, optional extra).

``vllm`` is imported lazily inside the functions, so CPU runs never import it. The ``model`` argument is then a
``vllm.LLM`` (made with ``load_vllm``) or a model name / directory, loaded once and cached. Same semantics as the
Hugging Face backend: ``counts[i]`` continuations of prompt ``i``, ``max_new_tokens``, stop strings cut from the text
(vLLM excludes them by default), ``finish_reason`` ``"stop"`` / ``"length"``, generated token ids, and seeded
sampling: request ``i`` gets seed ``config.seed * 100_003 + i``, so a rerun gives the same samples.

Prompts given as token ids go to vLLM as ``{"prompt_token_ids": ids}`` (a Monte-Carlo prefix continues from the
rollout's own tokens); ``n`` samples of one prompt are ONE request with ``SamplingParams(n=n)``, and the engine is
built with automatic prefix caching, so a shared prompt (the problem, a step prefix) is prefilled once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from negrl.generation.config import Generated, GenerationConfig, Prompt


def vllm_available() -> bool:
    """Whether ``vllm`` can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def load_vllm(model: str, dtype: str = "auto", gpu_memory_utilization: float = 0.85, **kwargs: Any) -> Any:
    """A ``vllm.LLM`` with prefix caching on (many samples and Monte-Carlo prefixes share prompt prefixes)."""
    from vllm import LLM

    return LLM(model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True,
               **kwargs)  # fmt: skip


@lru_cache(maxsize=2)
def _cached_llm(model: str) -> Any:
    return load_vllm(model)


def sampling_params(config: GenerationConfig, index: int, n: int = 1) -> Any:
    """vLLM ``SamplingParams`` equivalent to ``config`` for request ``index`` with ``n`` samples."""
    from vllm import SamplingParams

    greedy = config.temperature <= 0
    return SamplingParams(
        n=n,
        temperature=0.0 if greedy else config.temperature,
        top_p=1.0 if greedy else config.top_p,
        top_k=-1 if greedy or not config.top_k else config.top_k,
        max_tokens=config.max_new_tokens,
        stop=list(config.stop) or None,
        seed=None if greedy else config.seed * 100_003 + index,
    )


def as_llm(model: Any) -> Any:
    """A ``vllm.LLM`` from an engine, a model name or a directory; a torch model is refused with a clear error."""
    llm = _cached_llm(str(model)) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") else model
    if not hasattr(llm, "generate") or hasattr(llm, "forward"):
        raise TypeError("backend='vllm' needs a vllm.LLM or a model name/path, not a torch model")
    return llm


def generate_vllm(
    prompts: Sequence[Prompt], model: Any, tokenizer: Any, config: GenerationConfig,
    counts: Sequence[int] | None = None,
) -> list[list[Generated]]:
    """``negrl.generation.generate_samples`` on vLLM: ``counts[i]`` ``Generated`` for prompt ``i``, in input order."""
    counts = [1] * len(prompts) if counts is None else list(counts)
    keep = [i for i, n in enumerate(counts) if n > 0]
    results: list[list[Generated]] = [[] for _ in prompts]
    if not keep:
        return results
    llm = as_llm(model)
    requests = [prompts[i] if isinstance(prompts[i], str) else {"prompt_token_ids": list(prompts[i])} for i in keep]
    params = [sampling_params(config, i, counts[i]) for i in keep]
    outputs = llm.generate(requests, params, use_tqdm=config.show_progress)
    for i, out in zip(keep, outputs):
        results[i] = [
            Generated(text=o.text, finish_reason="length" if o.finish_reason == "length" else "stop",
                      token_ids=list(o.token_ids))  # fmt: skip
            for o in out.outputs
        ]
    return results
