"""vLLM behind ``negrl.generation``'s interface (``GenerationConfig(backend="vllm")``; GPU, optional extra).

``vllm`` is imported lazily inside the functions, so CPU runs never import it. The ``model`` argument is then a
``vllm.LLM`` (made with ``load_vllm``), a model name / directory, or a ``VLLMPolicy`` (an engine of a base model plus
the LoRA adapter its requests carry). Same semantics as the Hugging Face backend: ``counts[i]`` continuations of
prompt ``i``, ``max_new_tokens``, stop strings cut from the text (vLLM excludes them by default), ``finish_reason``
``"stop"`` / ``"length"``, generated token ids (EOS and the stop string's tokens removed), and seeded sampling:
request ``i`` gets seed ``config.seed * 100_003 + i``, so a rerun gives the same samples.

Every prompt reaches vLLM as ``{"prompt_token_ids": ids}``: text is encoded by ``encode_prompts``, the encoder of
the HF backend, so both backends condition on the same ids (vLLM's own text path would add the tokenizer's special
tokens), and a Monte-Carlo prefix continues from the rollout's own tokens. ``n`` samples of one prompt are ONE
request with ``SamplingParams(n=n)``, and the engine is built with automatic prefix caching, so a shared prompt (the
problem, a step prefix) is prefilled once.

One engine per process: ``vllm_engine`` builds the engine of a model once and hands the same one to every later
caller (sampling, Monte-Carlo labelling, a model path given as ``model``); a second model in the same process is
refused, because two engines do not fit one GPU's memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from negrl.generation.config import Generated, GenerationConfig, Prompt, encode_prompts


# vLLM's LoRAConfig accepts only these max_lora_rank values (``MaxLoRARanks`` in vllm.config.lora).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_available() -> bool:
    """Whether ``vllm`` can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def require_vllm(field_name: str = "backend") -> None:
    """Raise ``ImportError`` naming the config field that asked for vLLM when ``vllm`` cannot be imported."""
    if not vllm_available():
        raise ImportError(f"{field_name}: 'vllm' needs the vllm package (pip install vllm, on a CUDA machine); "
                          f"it is not importable here. Set {field_name}: hf to sample with Hugging Face generate.")


def load_vllm(model: str, dtype: str = "auto", gpu_memory_utilization: float = 0.85, **kwargs: Any) -> Any:
    """A ``vllm.LLM`` with prefix caching on (many samples and Monte-Carlo prefixes share prompt prefixes)."""
    from vllm import LLM

    return LLM(model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True,
               **kwargs)  # fmt: skip


@dataclass
class _Engine:
    model: str
    args: dict[str, Any]
    llm: Any
    asleep: bool = False


_ENGINE: list[_Engine] = []  # this process's engine (at most one)
_ADAPTER_IDS: dict[str, int] = {}  # adapter directory -> its LoRARequest id in this process


def vllm_engine(model: str, **engine_args: Any) -> Any:
    """This process's ``vllm.LLM`` of ``model``: built with ``load_vllm(model, **engine_args)`` on first use, then
    reused. Without ``engine_args`` any existing engine of ``model`` is reused; with them they must match the ones
    it was built with. Another model is refused (one engine per process: a second would not fit the GPU)."""
    model = str(model)
    if _ENGINE:
        eng = _ENGINE[0]
        if eng.model != model:
            raise RuntimeError(f"a vLLM engine of {eng.model!r} is already running in this process; negrl keeps one "
                               f"engine per process, so {model!r} cannot get its own (serve it as a LoRA adapter of "
                               f"the same base, or use backend 'hf' for it)")
        if engine_args and engine_args != eng.args:
            raise RuntimeError(f"the vLLM engine of {model!r} was built with {eng.args}, not {engine_args}")
        return eng.llm
    llm = load_vllm(model, **engine_args)
    _ENGINE.append(_Engine(model, dict(engine_args), llm))
    return llm


def close_vllm_engine() -> None:
    """Forget this process's engine and adapter ids (tests; the GPU memory is released when the engine object is
    collected)."""
    _ENGINE.clear()
    _ADAPTER_IDS.clear()


@contextlib.contextmanager
def engine_asleep() -> Iterator[None]:
    """Free the GPU memory of this process's engine for the block (``LLM.sleep(level=1)``: weights to CPU memory, KV
    cache dropped) and wake it after. A no-op when no engine was built or it was built without
    ``enable_sleep_mode=True``."""
    eng = _ENGINE[0] if _ENGINE else None
    if eng is None or not eng.args.get("enable_sleep_mode") or eng.asleep:
        yield
        return
    eng.llm.sleep(level=1)
    eng.asleep = True
    try:
        yield
    finally:
        eng.llm.wake_up()
        eng.asleep = False


def max_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of ``rank``."""
    fits = [r for r in VLLM_LORA_RANKS if r >= rank]
    if not fits:
        raise ValueError(f"a LoRA adapter of rank {rank} exceeds vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}")
    return fits[0]


@dataclass
class VLLMPolicy:
    """A policy served by vLLM: the engine of ``model`` (built on first use by ``vllm_engine`` with
    ``engine_args``) and, when ``adapter`` is set, the LoRA adapter directory (relative to ``model``) that every
    request carries as a ``vllm.lora.request.LoRARequest``."""

    model: str
    engine_args: dict[str, Any] = field(default_factory=dict)
    adapter: str | None = None

    @property
    def name_or_path(self) -> str:
        """What the rollouts record as their model: the adapter when one is set, else the base model."""
        return self.adapter or self.model

    def engine(self) -> Any:
        return vllm_engine(self.model, **self.engine_args)

    def lora_request(self) -> Any:
        """The ``LoRARequest`` of the adapter (``None``: the base model). vLLM identifies adapters by name and
        caches their weights by id, so each adapter directory gets its own id for the life of the process."""
        if self.adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        lora_id = _ADAPTER_IDS.setdefault(self.adapter, len(_ADAPTER_IDS) + 1)  # ids start at 1 (0 = no adapter)
        return LoRARequest(lora_name=f"negrl-{lora_id}", lora_int_id=lora_id, lora_path=self.adapter)


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


def as_llm(model: Any) -> tuple[Any, Any]:
    """``(vllm.LLM, LoRARequest or None)`` from an engine, a ``VLLMPolicy``, a model name or a directory; a torch
    model is refused with a clear error."""
    if isinstance(model, VLLMPolicy):
        return model.engine(), model.lora_request()
    llm = vllm_engine(str(model)) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") else model
    if not hasattr(llm, "generate") or hasattr(llm, "forward"):
        raise TypeError("backend='vllm' needs a vllm.LLM, a VLLMPolicy or a model name/path, not a torch model")
    return llm, None


def _generated_ids(out: Any, tokenizer: Any) -> list[int]:
    """The ids behind ``out.text`` (a vLLM ``CompletionOutput``), as the HF backend keeps them: without the EOS and,
    when a stop string ended it (``stop_reason`` is that string), without the stop string's tokens."""
    ids = list(out.token_ids)
    eos = getattr(tokenizer, "eos_token_id", None)
    if out.finish_reason != "length" and ids and ids[-1] == eos:
        ids = ids[:-1]
    if isinstance(getattr(out, "stop_reason", None), str):
        while ids and not out.text.startswith(tokenizer.decode(ids, skip_special_tokens=True)):
            ids = ids[:-1]
    return ids


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
    llm, lora = as_llm(model)
    ids = encode_prompts([prompts[i] for i in keep], tokenizer)
    requests = [{"prompt_token_ids": row} for row in ids]
    params = [sampling_params(config, i, counts[i]) for i in keep]
    extra = {} if lora is None else {"lora_request": lora}
    outputs = llm.generate(requests, params, use_tqdm=config.show_progress, **extra)
    for i, out in zip(keep, outputs):
        results[i] = [
            Generated(text=o.text, finish_reason="length" if o.finish_reason == "length" else "stop",
                      token_ids=_generated_ids(o, tokenizer))
            for o in out.outputs
        ]
    return results
