"""Sampling settings, the generated record, and the one prompt builder shared by both backends.

A *prompt* is either text or a list of token ids. Ids are how a Monte-Carlo continuation resumes a rollout exactly
where the policy left it: re-encoding a prefix cut from text can give tokens the policy never generated (byte-level
BPE merges ``"\\n" + "\\n"`` into one token), so cut rollouts are continued from their generated ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


Prompt = str | list[int]
BACKENDS = ("hf", "vllm")


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
        if self.backend not in BACKENDS:
            raise ValueError(f"GenerationConfig.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.num_samples < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("GenerationConfig: num_samples, batch_size and max_new_tokens must be positive")


@dataclass
class Generated:
    """One generated continuation.

    Attributes:
        text: Decoded text, stop string removed.
        finish_reason: ``"stop"`` (EOS or a stop string) or ``"length"`` (hit ``max_new_tokens``).
        token_ids: The generated ids behind ``text`` (EOS, padding and everything from the stop string on removed).
    """

    text: str
    finish_reason: str
    token_ids: list[int] = field(default_factory=list)


def format_prompt(prompt: str, tokenizer: Any, use_chat_template: bool) -> str:
    """The text fed to the model: the raw prompt, or the prompt as a user turn of the chat template; BOS once.

    This string is the whole model input of every stage (sampling, Monte-Carlo labelling, every trainer and every
    evaluation encode it without special tokens), so the BOS rule lives here (``with_bos``): a tokenizer that puts
    BOS in front of plain text gets it exactly once, whether the prompt is raw or the chat template rendered it.
    """
    if not use_chat_template:
        return with_bos(prompt, tokenizer)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("use_chat_template=True but the tokenizer has no chat template")
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    return with_bos(text, tokenizer)


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """Whether ``tokenizer(text)`` puts its BOS in front of plain text (``add_bos_token`` or its post-processor)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None or not getattr(tokenizer, "bos_token", None):
        return False
    ids = tokenizer("a")["input_ids"]
    return len(ids) > len(tokenizer("a", add_special_tokens=False)["input_ids"]) and ids[0] == bos


def with_bos(text: str, tokenizer: Any) -> str:
    """``text`` starting with the tokenizer's BOS exactly once (the BOS rule of every stage's prompt).

    Rule: a tokenizer that adds BOS to plain text (``tokenizer_adds_bos``: Llama, Mistral, Gemma, DeepSeek) is the
    model saying it expects one, so a prompt that does not start with the BOS text gets it prepended; one that does
    (a chat template rendering ``{{ bos_token }}``) is left as is, never given a second. Tokenizers that add no BOS
    (the embedded character tokenizer, Qwen, SmolLM2) leave every prompt unchanged. Prompts are then encoded with
    ``add_special_tokens=False`` everywhere, where the BOS text becomes the BOS id. To train and sample without BOS
    on such a model, turn it off on the tokenizer (``add_bos_token=False``), which every stage then follows.
    The one difference from ``apply_chat_template(tokenize=True)``: a template that does not render a BOS the
    tokenizer adds gets one here, as a raw prompt would. BOS as text is the chat templates' own convention, and
    for byte-level BPE (Llama 3, DeepSeek, Qwen-style) it gives exactly the ids of ``tokenizer(prompt)``; a
    SentencePiece tokenizer that prefixes a space only at the start of the input (``Metaspace(prepend_scheme=
    "first")``) encodes the first word after the BOS text without that space, as it does after a template's BOS.
    """
    if tokenizer is None or not tokenizer_adds_bos(tokenizer) or text.startswith(tokenizer.bos_token):
        return text
    return tokenizer.bos_token + text


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def encode_prompts(prompts: Sequence[Prompt], tokenizer: Any) -> list[list[int]]:
    """Token ids of each prompt: texts encoded in one batched call (no special tokens added), ids passed through.

    No special tokens: a text is the whole model input, BOS included (``format_prompt`` / ``with_bos``).
    """
    texts = [(i, p) for i, p in enumerate(prompts) if isinstance(p, str)]
    out: list[list[int]] = [list(p) if not isinstance(p, str) else [] for p in prompts]
    if texts:
        enc = tokenizer([p for _, p in texts], add_special_tokens=False)["input_ids"]
        for (i, _), ids in zip(texts, enc):
            out[i] = list(ids)
    return out


@dataclass
class GenerationStats:
    """Work counters a backend adds to when given one (machine-independent cost of a generation job).

    Attributes:
        calls: ``generate`` calls (chunks).
        sequences: Continuations sampled.
        prefill_tokens: Prompt positions run through the model (padding included; a shared prefill counts once).
        decode_tokens: Positions run by decoding steps (rows × steps, finished rows included, as computed).
        generated_tokens: Tokens kept in the outputs (up to EOS / the stop string).
        forward_passes: Sequential model calls (prefills and decoding steps): what bounds the wall time of a model too
            small to fill the machine.
    """

    calls: int = 0
    sequences: int = 0
    prefill_tokens: int = 0
    decode_tokens: int = 0
    generated_tokens: int = 0
    forward_passes: int = 0

    @property
    def forward_tokens(self) -> int:
        """Prefill + decode positions: what the model computed."""
        return self.prefill_tokens + self.decode_tokens
