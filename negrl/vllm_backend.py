"""vLLM behind ``negrl.generation``'s interface (``GenerationConfig(backend="vllm")``; GPU, optional extra).

``vllm`` is imported lazily inside the functions, so CPU runs never import it. The ``model`` argument of
``generate_texts`` is then a ``vllm.LLM`` (made with ``load_vllm``) or a model name / directory, loaded once and
cached. Same semantics as the Hugging Face backend: one continuation per prompt, ``max_new_tokens``, stop strings
cut from the text (vLLM excludes them by default), ``finish_reason`` ``"stop"`` / ``"length"``, and seeded sampling:
request ``i`` gets seed ``config.seed * 100_003 + i`` so duplicated prompts (``num_samples > 1``) get different
samples and a rerun gives the same ones. Chat templates are applied by ``generate_rollouts`` before this is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from negrl.generation import Generated, GenerationConfig


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


def sampling_params(config: GenerationConfig, index: int) -> Any:
    """vLLM ``SamplingParams`` equivalent to ``config`` for request ``index``."""
    from vllm import SamplingParams

    greedy = config.temperature <= 0
    return SamplingParams(
        n=1,
        temperature=0.0 if greedy else config.temperature,
        top_p=1.0 if greedy else config.top_p,
        top_k=-1 if greedy or not config.top_k else config.top_k,
        max_tokens=config.max_new_tokens,
        stop=list(config.stop) or None,
        seed=None if greedy else config.seed * 100_003 + index,
    )


def generate_texts_vllm(prompts: Sequence[str], model: Any, tokenizer: Any, config: GenerationConfig) -> list[Generated]:
    """``negrl.generation.generate_texts`` on vLLM: one ``Generated`` per prompt, in input order."""
    from negrl.generation import Generated

    llm = _cached_llm(str(model)) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") else model
    if not hasattr(llm, "generate") or hasattr(llm, "forward"):
        raise TypeError("backend='vllm' needs a vllm.LLM or a model name/path, not a torch model")
    params = [sampling_params(config, i) for i in range(len(prompts))]
    outputs = llm.generate(list(prompts), params, use_tqdm=config.show_progress)
    results = []
    for out in outputs:
        first = out.outputs[0]
        results.append(Generated(text=first.text, finish_reason="length" if first.finish_reason == "length" else "stop"))
    return results
