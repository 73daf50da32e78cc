"""The Hugging Face ``generate`` backend: batched, length-bucketed, seeded; K samples of a prompt share its prefill.

- prompts are sorted by token length and cut into chunks of ``batch_size`` sequences (length bucketing: short and long
  prompts do not pad each other; chunks of 128–256 beat one giant call 2–3× on CPU, because the dynamic KV cache
  grows by concatenation and one long sequence keeps the whole batch decoding);
- left padding, a ``max_new_tokens`` limit, stop strings (cut from the returned text), ``<eos>``;
- seeded sampling: the same prompts, config and seed give the same texts, whatever else ran before;
- ``counts``: ``n`` samples of one prompt are decoded side by side from ONE prefill of the prompt (its KV cache is
  computed once and repeated ``n`` times), so a prefix continued K times is encoded once, not K times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, StoppingCriteria, StoppingCriteriaList

from negrl.generation.config import (
    Generated,
    GenerationConfig,
    GenerationStats,
    Prompt,
    cut_at_stop,
    encode_prompts,
)


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


def _left_pad(rows: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _shared_prefill(model: Any, ids: torch.Tensor, mask: torch.Tensor, repeat: torch.Tensor) -> DynamicCache:
    """KV cache of every unique prompt but its last token, repeated per sample (``generate`` then feeds the last)."""
    # ids, mask: [unique, width]; repeat: [samples] row index into the unique prompts.
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate derives them from a left-padded mask
    cache = DynamicCache(config=model.config)
    model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=position_ids[:, :-1],
          cache=cache, use_cache=True)  # fmt: skip
    cache.batch_select_indices(repeat)
    return cache


def _finish(row: torch.Tensor, tokenizer: Any, stops: Sequence[str]) -> Generated:
    """Text, finish reason and ids of one generated row (``row``: [new_tokens])."""
    ids = row.tolist()
    eos = tokenizer.eos_token_id
    ended_eos = eos in ids
    if ended_eos:
        ids = ids[: ids.index(eos)]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    text, stopped = cut_at_stop(text, stops)
    if stopped:  # keep the ids whose text is a prefix of the cut text (the stop string's tokens are dropped)
        while ids and not text.startswith(tokenizer.decode(ids, skip_special_tokens=True)):
            ids = ids[:-1]
    return Generated(text=text, finish_reason="stop" if ended_eos or stopped else "length", token_ids=ids)


@torch.no_grad()
def _generate_chunk(
    model: Any, tokenizer: Any, rows: list[list[int]], repeat: list[int], config: GenerationConfig, seed: int,
    share_prefill: bool, stats: GenerationStats | None = None,
) -> list[Generated]:
    """Sample one continuation per entry of ``repeat`` (an index into ``rows``, the chunk's unique prompts)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask = _left_pad(rows, pad, model.device)
    index = torch.tensor(repeat, device=model.device)
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "pad_token_id": pad,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if config.temperature > 0:
        kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=config.top_k or 0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    prompt_len = ids.shape[1]
    if config.stop:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnStrings(tokenizer, config.stop, prompt_len)])
    shared = share_prefill and len(repeat) > len(rows) and prompt_len > 1
    if shared:
        kwargs["cache"] = _shared_prefill(model, ids, mask, index)
    torch.manual_seed(seed)
    out = model.generate(input_ids=ids[index], attention_mask=mask[index], **kwargs)
    generated = [_finish(row, tokenizer, config.stop) for row in out[:, prompt_len:]]
    if stats is not None:
        steps = out.shape[1] - prompt_len
        stats.calls += 1
        stats.sequences += len(repeat)
        # a shared prefill runs the unique prompts once, then the last prompt token of every sample
        stats.prefill_tokens += len(rows) * (prompt_len - 1) + len(repeat) if shared else len(repeat) * prompt_len
        stats.decode_tokens += len(repeat) * max(0, steps - 1)
        stats.generated_tokens += sum(len(g.token_ids) for g in generated)
        stats.forward_passes += steps + shared
    return generated


def _chunks(order: list[int], counts: Sequence[int], batch_size: int) -> list[list[tuple[int, int]]]:
    """Cut ``(prompt, n)`` requests, in ``order``, into chunks of at most ``batch_size`` sequences."""
    chunks: list[list[tuple[int, int]]] = [[]]
    room = batch_size
    for i in order:
        left = counts[i]
        while left > 0:
            if room == 0:
                chunks.append([])
                room = batch_size
            take = min(left, room)
            chunks[-1].append((i, take))
            left -= take
            room -= take
    return [c for c in chunks if c]


def generate_hf(
    prompts: Sequence[Prompt], model: Any, tokenizer: Any, config: GenerationConfig,
    counts: Sequence[int] | None = None, share_prefill: bool = True, stats: GenerationStats | None = None,
) -> list[list[Generated]]:
    """``counts[i]`` continuations of ``prompts[i]`` (default 1 each), as one list per prompt, in input order.

    Deterministic for the same prompts, counts, config and seed. With ``share_prefill`` a prompt's samples in one
    chunk are decoded from one prefill of the prompt (the same distribution; other random draws than without).
    ``stats`` (optional) is added to: calls, sequences, prefill / decode / generated tokens.
    """
    counts = [1] * len(prompts) if counts is None else list(counts)
    if len(counts) != len(prompts):
        raise ValueError(f"generate_hf: {len(counts)} counts for {len(prompts)} prompts")
    results: list[list[Generated]] = [[] for _ in prompts]
    if not prompts or not any(counts):
        return results
    rows = encode_prompts(prompts, tokenizer)
    if any(not r for r in rows):
        raise ValueError("generate_hf: an empty prompt has nothing to condition on")
    order = sorted(range(len(prompts)), key=lambda i: len(rows[i]))
    chunks = _chunks(order, counts, config.batch_size)
    was_training = model.training
    model.eval()
    total = sum(counts)
    bar = tqdm(total=total, desc="generate", unit="seq", disable=not config.show_progress or len(chunks) < 2)
    for c, chunk in enumerate(chunks):
        repeat = [j for j, (_, n) in enumerate(chunk) for _ in range(n)]
        out = _generate_chunk(model, tokenizer, [rows[i] for i, _ in chunk], repeat, config,
                              seed=config.seed * 100_003 + c, share_prefill=share_prefill, stats=stats)  # fmt: skip
        for j, g in zip(repeat, out):
            results[chunk[j][0]].append(g)
        bar.update(len(repeat))
    bar.close()
    model.train(was_training)
    return results

