"""PRM families: how a process reward model reads a rollout and where its per-step score comes from.

``PRMScorer`` (``negrl.steps.prm``) scores every family through one interface; this module holds what differs:

- ``"negrl"``: negrl's own PRMs (``PRMScorer.save_pretrained``): a causal LM reads ``prompt ⊕ steps`` unchanged and
  the step score is ``sigmoid(logit["+"] − logit["-"])`` at the last token of each step.
- ``"step_head"`` (Qwen2.5-Math-PRM style): a reward head gives per-token class logits ``(B, T, C)``; a separator
  token (``separator``, ``"<extra_0>"``) is appended to every step and the score is ``softmax(logits)[positive_index]``
  at each separator (``sigmoid`` when the head has one output). By default the rollout is laid out as Qwen's model
  card does: the chat template with a system prompt, the question as the user turn, and an assistant turn of the
  steps (trailing whitespace dropped), each followed by ``<extra_0>``.
- ``"step_tag"`` (Math-Shepherd style): a causal LM; a tag (``separator``, ``" ки"``) is appended to every step
  (before its trailing newline) and the score is the softmax of the LM logits of ``"+"`` vs ``"-"`` at the tag,
  i.e. ``sigmoid(logit["+"] − logit["-"])``; input ``question + " " + steps`` with the tokenizer's BOS. The label
  tokens are the single tokens ``tokenizer("+")`` / ``tokenizer("-")`` encode to (``label_token_ids``); Math-Shepherd's
  model card takes ``tokenizer.encode("+ -")[1:]`` instead, so check that the two give the same ids for a new
  checkpoint (``positive_token`` / ``negative_token`` otherwise).

For the two external families the read token must be the separator's last token and end exactly where the separator
ends; a tokenizer that merges the separator with the following text is reported (``ValueError``) instead of read at
a wrong position.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch


PRM_FAMILIES = ("negrl", "step_head", "step_tag")
QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class PRMFormat:
    """How one PRM family lays out a rollout and reads a step score (fields of ``prm.json`` / ``from_pretrained``).

    Attributes:
        family: one of ``PRM_FAMILIES``.
        positive_token / negative_token: label tokens of the ``negrl`` and ``step_tag`` families.
        separator: text appended to each step, whose last token is read (``step_head`` / ``step_tag``).
        keep_step_whitespace: keep a step's trailing whitespace after its separator (``"x ки\\n"``); else drop it.
        prompt_separator: text between the prompt and the first step (raw layout only).
        chat_template: lay out ``system_prompt`` / prompt / steps through the tokenizer's chat template.
        system_prompt: the system turn of the chat layout (``None``: none).
        add_special_tokens: let the tokenizer add BOS etc. to the raw layout.
        positive_index: the ``step_head`` class read as "step correct".
        trust_remote_code: passed to ``from_pretrained`` (Qwen2.5-Math-PRM ships its own modelling code).
    """

    family: str = "negrl"
    positive_token: str = "+"
    negative_token: str = "-"
    separator: str = ""
    keep_step_whitespace: bool = True
    prompt_separator: str = ""
    chat_template: bool = False
    system_prompt: str | None = None
    add_special_tokens: bool = False
    positive_index: int = 1
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.family not in PRM_FAMILIES:
            raise ValueError(f"unknown PRM family {self.family!r}; expected one of {list(PRM_FAMILIES)}")
        if self.family != "negrl" and not self.separator:
            raise ValueError(f"PRM family {self.family!r} needs a non-empty separator (the token its score is read at)")

    @property
    def reads_label_tokens(self) -> bool:
        """True when the score is ``sigmoid(logit[+] − logit[-])`` of an LM head (not a reward head's class)."""
        return self.family != "step_head"


FAMILY_DEFAULTS: dict[str, PRMFormat] = {
    "negrl": PRMFormat(),
    "step_head": PRMFormat(family="step_head", separator="<extra_0>", keep_step_whitespace=False,
                           chat_template=True, system_prompt=QWEN_PRM_SYSTEM, positive_index=1),
    "step_tag": PRMFormat(family="step_tag", separator=" ки", keep_step_whitespace=True, prompt_separator=" ",
                          add_special_tokens=True),
}
FORMAT_FIELDS = tuple(f.name for f in fields(PRMFormat))


def make_format(family: str, options: Mapping[str, Any] | None = None, where: str = "PRM") -> PRMFormat:
    """``FAMILY_DEFAULTS[family]`` with ``options`` (``PRMFormat`` fields) replaced; unknown fields are errors."""
    if family not in FAMILY_DEFAULTS:
        raise ValueError(f"{where}: unknown PRM family {family!r}; expected one of {list(PRM_FAMILIES)}")
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(FORMAT_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown PRM format field(s) {unknown}; known: {list(FORMAT_FIELDS)}")
    return replace(FAMILY_DEFAULTS[family], **{**opts, "family": family})


def format_meta(fmt: PRMFormat) -> dict[str, Any]:
    """The ``prm.json`` fields of a format: negrl's own keep their original two keys (no ``family``)."""
    if fmt.family == "negrl":
        return {"positive_token": fmt.positive_token, "negative_token": fmt.negative_token}
    return asdict(fmt)


def config_architectures(name: str) -> list[str]:
    """``architectures`` of a model directory's or hub id's ``config.json`` (read as JSON: no remote code runs);
    ``OSError`` from transformers when there is none (e.g. a hub id not in the local cache while offline)."""
    from transformers.utils import cached_file

    path = cached_file(name, "config.json")
    if path is None:  # a local directory without one
        raise OSError(f"{name!r} has no config.json: not a model directory")
    return list(json.loads(Path(path).read_text(encoding="utf-8")).get("architectures") or [])


def detect_family(meta: Mapping[str, Any] | None, architectures: Sequence[str]) -> str | None:
    """The family of a model: ``prm.json``'s ``family`` (``"negrl"`` when it has none); else a reward-model
    architecture (``*ForProcessRewardModel``, as Qwen2.5-Math-PRM) is ``step_head``; else ``None`` (unknown:
    Math-Shepherd is a plain causal LM and must be named with ``family="step_tag"``)."""
    if meta is not None:
        return str(meta.get("family", "negrl"))
    if any(a.endswith("ForProcessRewardModel") for a in architectures):
        return "step_head"
    return None


def layout(fmt: PRMFormat, tokenizer: Any, prompt: str, steps: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text the PRM reads and, per step, the character span whose last token carries the step's score."""
    if fmt.family == "negrl":
        spans, end = [], len(prompt)
        for step in steps:
            spans.append((end, end + len(step)))
            end += len(step)
        return prompt + "".join(steps), spans
    pieces, spans, pos = [], [], 0
    for step in steps:
        core = step.rstrip()
        spans.append((pos + len(core), pos + len(core) + len(fmt.separator)))
        piece = core + fmt.separator + (step[len(core):] if fmt.keep_step_whitespace else "")
        pieces.append(piece)
        pos += len(piece)
    content = "".join(pieces)
    if fmt.chat_template:
        messages = ([{"role": "system", "content": fmt.system_prompt}] if fmt.system_prompt is not None else []) + [
            {"role": "user", "content": prompt}, {"role": "assistant", "content": content}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        start = text.rfind(content)
        if start < 0:
            raise ValueError("PRM chat template does not keep the assistant turn verbatim; set chat_template=False")
    else:
        text = prompt + fmt.prompt_separator + content
        start = len(prompt) + len(fmt.prompt_separator)
    return text, [(start + a, start + b) for a, b in spans]


def encode_spans(tokenizer: Any, text: str, spans: Sequence[tuple[int, int]], max_length: int,
                 add_special_tokens: bool = False, exact_end: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (cut at ``max_length``) and, per span, the index of the last token that starts inside
    it (-1 when the span is cut off). With ``exact_end`` that token must end exactly at the span's end."""
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"][:max_length], enc["offset_mapping"][:max_length]
    covered = len(text) if len(enc["input_ids"]) <= max_length else (offsets[-1][1] if offsets else 0)
    positions = []
    for start, end in spans:
        # zero-width offsets are added special tokens (BOS), never part of the text
        inside = [t for t, (a, b) in enumerate(offsets) if start <= a < end and b > a]
        pos = inside[-1] if inside and covered >= end else -1
        if pos >= 0 and exact_end and offsets[pos][1] != end:
            raise ValueError(f"PRM separator {text[start:end]!r} is not a token boundary for this tokenizer: the token "
                             f"read at it spans {text[offsets[pos][0]:offsets[pos][1]]!r}")
        positions.append(pos)
    return ids, positions


def step_probabilities(fmt: PRMFormat, logits: torch.Tensor, label_ids: tuple[int, int] | None) -> torch.Tensor:
    """``(B, T)`` P(step correct) at every position, from ``(B, T, V)`` LM or ``(B, T, C)`` reward-head logits."""
    if fmt.reads_label_tokens:
        assert label_ids is not None
        return torch.sigmoid((logits[..., label_ids[0]] - logits[..., label_ids[1]]).float())
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0].float())
    if not 0 <= fmt.positive_index < logits.shape[-1]:
        raise ValueError(f"PRM positive_index {fmt.positive_index} is outside the head's {logits.shape[-1]} outputs")
    return torch.softmax(logits.float(), dim=-1)[..., fmt.positive_index]


def load_step_head(name: str, fmt: PRMFormat, device: str | None = None) -> tuple[Any, Any]:
    """A reward-head PRM and its tokenizer: ``AutoModelForTokenClassification`` for a token-classification
    checkpoint, else ``AutoModel`` (Qwen2.5-Math-PRM: ``trust_remote_code=True``); eval mode on ``device``."""
    from transformers import AutoModel, AutoModelForTokenClassification

    from negrl.modeling import _resolve_dtype, check_local_model_path, default_device, load_tokenizer

    device = device or default_device()
    check_local_model_path(name)
    token_cls = any(a.endswith("ForTokenClassification") for a in config_architectures(name))
    auto = AutoModelForTokenClassification if token_cls else AutoModel
    model = auto.from_pretrained(name, dtype=_resolve_dtype("auto", device), trust_remote_code=fmt.trust_remote_code)
    model.to(device)
    model.eval()
    return model, load_tokenizer(name)
