"""Prompt/completion rows as token ids with a completion mask and per-token weights, and their log-probabilities.

Shared by the builders (BCPG-NSA's behaviour log-probs are computed on exactly the token ids the trainer will see)
and the weighted-completion trainers (``negrl.trainers.weighted``: BCPG-NSA, AWR):

1. ``tokenize_weighted`` — prompt + completion → token ids, a completion mask and per-token weights. Weights are
   given as character spans of the completion ``(start, end, weight)`` (a step's ``Step.start`` / ``Step.end``) and
   mapped to tokens through the fast tokenizer's offset mapping, so the same code works for the character tokenizer
   (one token per character) and for BPE tokenizers (a token may cover several characters, or straddle a step
   boundary: **a token takes the weight of the span in which it starts**; a token starting outside every span takes
   ``default_weight``). Prompt and completion are tokenised separately and concatenated, so the prompt/completion
   boundary is exact for every tokenizer. Given the completion's *generated* ids (``completion_ids``), those are the
   completion tokens instead of a re-encoding of its text, and a span's tokens are those between the token cuts
   (``negrl.steps.monte_carlo.token_cut``) of its start and end: a token straddling a step end belongs to the next
   step, as in the Monte-Carlo prefixes that valued the steps.
2. ``WeightedCompletionCollator`` — right-pads ``input_ids`` / ``attention_mask`` / ``completion_mask`` /
   ``token_weights`` and stacks named float scalar columns (``advantage``, ``ref_logp``, ...).
3. ``completion_token_logps`` / ``sequence_logps`` — per-token ``(B, T-1)`` and per-sequence log-probabilities.

Conventions: position ``t`` of the ``(B, T-1)`` tensors scores token ``input_ids[:, t+1]``; masks and weights are
shifted the same way (``completion_mask[:, 1:]``, ``token_weights[:, 1:]``). Padding and prompt tokens have mask 0
and weight 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from trl.trainer.utils import selective_log_softmax

from negrl.generation.config import with_bos
from negrl.steps.monte_carlo import token_cut


TOKEN_COLUMNS = ("input_ids", "completion_mask", "token_weights")
Span = tuple[int, int, float]


def _check_spans(spans: Sequence[Sequence[float]], n_chars: int) -> list[Span]:
    """Validate ``(start, end, weight)`` spans: inside ``[0, n_chars]``, ``start <= end``, non-overlapping."""
    out: list[Span] = []
    for i, span in enumerate(spans):
        if len(span) != 3:
            raise ValueError(f"span {i}: expected (start, end, weight), got {span!r}")
        start, end, weight = int(span[0]), int(span[1]), float(span[2])
        if not 0 <= start <= end <= n_chars:
            raise ValueError(f"span {i} = ({start}, {end}) is outside the completion [0, {n_chars}]")
        out.append((start, end, weight))
    out.sort()
    for (_, e0, _), (s1, _, _) in zip(out, out[1:]):
        if s1 < e0:
            raise ValueError(f"spans overlap: one ends at {e0}, the next starts at {s1}")
    return out


def span_weights(offsets: Sequence[tuple[int, int]], spans: Sequence[Span], default_weight: float) -> list[float]:
    """Weight of each token from its character offsets: the span containing the token's start, else the default."""
    weights = []
    for start, _ in offsets:
        w = default_weight
        for s, e, span_w in spans:
            if s <= start < e:
                w = span_w
                break
        weights.append(w)
    return weights


def generated_span_weights(
    tokenizer: Any, ids: Sequence[int], completion: str, spans: Sequence[Span], default_weight: float
) -> list[float]:
    """Weight of each generated token: the tokens from the cut at a span's start to the cut at its end take its
    weight (cuts: the largest token boundary at or before a character offset, ``token_cut``)."""
    def cut(pos: int) -> int:
        if pos >= len(completion):
            return len(ids)
        n = token_cut(tokenizer, ids, completion, pos)
        if n is None:
            raise ValueError(f"completion_ids do not decode to the completion {completion[:40]!r}...: ids of another "
                             "tokenizer?")
        return n

    weights = [float(default_weight)] * len(ids)
    for start, end, weight in spans:
        a, b = cut(start), cut(end)
        weights[a:b] = [weight] * (b - a)
    return weights


def tokenize_weighted(
    tokenizer: Any,
    prompt: str,
    completion: str,
    spans: Sequence[Sequence[float]] | None = None,
    default_weight: float = 1.0,
    add_eos: bool = True,
    max_length: int | None = None,
    eos_weight: float | None = None,
    completion_ids: Sequence[int] | None = None,
) -> dict[str, list]:
    """Tokenise one prompt/completion row with per-token weights on the completion.

    Args:
        tokenizer: A fast tokenizer (offset mapping needed when ``spans`` are given).
        prompt: Text the policy was conditioned on (already chat-formatted if the model uses a template).
        completion: The sampled completion.
        spans: ``(start, end, weight)`` character spans in completion coordinates; a token takes the weight of the
            span in which it *starts* (see the module docstring); other tokens take ``default_weight``.
        default_weight: Weight of completion tokens outside every span.
        add_eos: Append ``tokenizer.eos_token_id`` as the last completion token (a finished sample).
        max_length: Keep at most this many tokens in all (the end of the completion is cut).
        eos_weight: Weight of the appended EOS token (default: ``default_weight``).
        completion_ids: The token ids the policy generated for ``completion`` (they must decode to it): used as the
            completion tokens instead of encoding the text (spans mapped with ``generated_span_weights``).

    Returns:
        ``{"input_ids": [P + C ints], "completion_mask": [0]*P + [1]*C, "token_weights": [0.0]*P + C weights}``.
    """
    prompt_ids = tokenizer(with_bos(prompt, tokenizer), add_special_tokens=False)["input_ids"]  # BOS once
    if completion_ids is not None:
        completion_ids = list(completion_ids)
        if tokenizer.decode(completion_ids, skip_special_tokens=True) != completion:
            raise ValueError(f"completion_ids decode to {tokenizer.decode(completion_ids)[:40]!r}..., not to the "
                             f"completion {completion[:40]!r}...: ids of another tokenizer, or another row's ids?")
        weights = generated_span_weights(tokenizer, completion_ids, completion,
                                         _check_spans(spans or [], len(completion)), default_weight)  # fmt: skip
    else:
        enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=spans is not None)
        completion_ids = list(enc["input_ids"])
        if spans:
            weights = span_weights(enc["offset_mapping"], _check_spans(spans, len(completion)), default_weight)
        else:
            weights = [float(default_weight)] * len(completion_ids)
    if add_eos:
        if tokenizer.eos_token_id is None:
            raise ValueError("add_eos=True but the tokenizer has no eos_token_id")
        completion_ids.append(tokenizer.eos_token_id)
        weights.append(float(default_weight if eos_weight is None else eos_weight))
    input_ids = list(prompt_ids) + completion_ids
    completion_mask = [0] * len(prompt_ids) + [1] * len(completion_ids)
    token_weights = [0.0] * len(prompt_ids) + weights
    if max_length is not None:
        input_ids, completion_mask, token_weights = (
            input_ids[:max_length], completion_mask[:max_length], token_weights[:max_length]
        )
    return {"input_ids": input_ids, "completion_mask": completion_mask, "token_weights": token_weights}


def tokenize_weighted_dataset(
    dataset: Dataset, tokenizer: Any, max_length: int | None = None, add_eos: bool = True
) -> Dataset:
    """Add ``TOKEN_COLUMNS`` to rows with ``prompt``, ``completion`` and optional ``spans`` / ``default_weight``."""
    missing = {"prompt", "completion"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"weighted dataset needs columns 'prompt' and 'completion' (missing {sorted(missing)})")

    def _row(row: dict[str, Any]) -> dict[str, list]:
        return tokenize_weighted(
            tokenizer, row["prompt"], row["completion"], spans=row.get("spans"),
            default_weight=row.get("default_weight", 1.0), add_eos=add_eos, max_length=max_length,
        )

    return dataset.map(_row, desc="tokenize weighted rows")


@dataclass
class WeightedCompletionCollator:
    """Right-pad token columns and stack scalar columns into a batch of tensors.

    Token columns: ``input_ids`` (padded with ``pad_token_id``), ``attention_mask`` (built: 1 on real tokens),
    ``completion_mask`` (0 on padding) and ``token_weights`` (0.0 on padding), each ``(B, T)``. Every other column
    named in ``scalar_columns`` that a feature carries is stacked into a float tensor ``(B,)``; other keys (text
    columns) are dropped.
    """

    pad_token_id: int
    scalar_columns: Sequence[str] = ("advantage", "ref_logp")
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(features), width), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(features), width), dtype=torch.long),
            "completion_mask": torch.zeros((len(features), width), dtype=torch.long),
            "token_weights": torch.zeros((len(features), width), dtype=torch.float32),
        }
        for i, (f, n) in enumerate(zip(features, lengths)):
            batch["input_ids"][i, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            batch["attention_mask"][i, :n] = 1
            batch["completion_mask"][i, :n] = torch.as_tensor(f["completion_mask"], dtype=torch.long)
            batch["token_weights"][i, :n] = torch.as_tensor(f["token_weights"], dtype=torch.float32)
        for name in self.scalar_columns:
            if name in features[0]:
                batch[name] = torch.tensor([float(f[name]) for f in features], dtype=torch.float32)
        return batch


def completion_token_logps(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``log π(input_ids[:, t+1] | input_ids[:, :t+1])``, shape ``(B, T-1)``.

    Computed on every position; multiply by ``completion_mask[:, 1:]`` to keep completion tokens only.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits  # (B, T, V)
    # TRL's selective_log_softmax avoids a (B, T, V) float32 log-softmax (row by row for bf16 logits).
    return selective_log_softmax(logits[:, :-1], input_ids[:, 1:]).float()  # (B, T-1)


@torch.no_grad()
def sequence_logps(
    model: Any, rows: Sequence[dict[str, Any]], pad_token_id: int, batch_size: int = 64
) -> list[float]:
    """``log π(completion | prompt)`` (sum over completion tokens) of tokenised rows, batched; model in eval mode.

    Used to precompute behaviour-policy log-probabilities once (BCPG-NSA's ``ref_logp`` column).
    """
    collate = WeightedCompletionCollator(pad_token_id=pad_token_id, scalar_columns=())
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))  # length-bucketed batches
    out = [0.0] * len(rows)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        batch = collate([rows[i] for i in idx])
        logps = completion_token_logps(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
        seq = (logps * batch["completion_mask"][:, 1:].to(device)).sum(-1)  # (B,)
        for i, v in zip(idx, seq.tolist()):
            out[i] = v
    model.train(was_training)
    return out
