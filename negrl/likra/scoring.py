"""Likra scoring: answer log-likelihoods under several heads in one batched forward, combined into scores.

``answer_logprobs`` runs each batch once through the ``PeftModel`` with peft's mixed-adapter batching
(``adapter_names=["pos", ..., "neg", ..., "__base__", ...]``), so the positive head, the negative head and the bare
base (adapters disabled) are scored together. The score arithmetic (pos − w·neg, the modes, acc_norm's length
normalisation) is the pure function ``negrl.losses.likra_scores``.

``acc_norm`` divides each option's score by its length; ``length_norm`` says which length (``option_lengths``):

- ``"chars"`` (default; the lm-evaluation-harness convention the Likra paper reports): the option's character count
  *without* the leading delimiter (``answer_prefix``, ``" "`` for ARC): lm-eval scores ``" " + option`` but divides
  by ``len(option)``;
- ``"bytes"``: the UTF-8 bytes of the scored continuation ``answer_prefix + option`` (negrl's earlier behaviour).

The two can pick different options (a short option gains more from the extra delimiter unit under ``"bytes"``, and
non-ASCII text counts more bytes than characters).

Sequences are prompt ids + answer ids (``negrl.likra.heads.tokenize_pairs``, lm-eval's convention), so the
log-likelihood is summed over exactly the answer tokens the heads were trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from negrl.losses import LIKRA_MODES, choice_predictions, likra_head_weights, likra_scores
from negrl.records import Problem


BASE = "base"  # head name of the base model with adapters disabled (peft: "__base__")


def _peft_name(head: str) -> str:
    return "__base__" if head == BASE else head


@torch.no_grad()
def answer_logprobs(
    model: torch.nn.Module,
    tokenizer: object,
    prompts: Sequence[str],
    answers: Sequence[str],
    heads: Sequence[str] = ("pos", "neg", BASE),
    batch_size: int = 8,
    show_progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Summed log p(answer | prompt) of every pair under each head: ``{head: (N,)}`` (float32, CPU).

    ``heads`` are adapter names of a ``PeftModel`` or ``"base"``; a plain model supports only ``"base"``.
    ``batch_size`` counts pairs; each forward holds ``batch_size × len(heads)`` sequences.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    is_peft = hasattr(model, "peft_config")
    if not is_peft and set(heads) != {BASE}:
        raise ValueError(f"heads {list(heads)} need a PeftModel; a plain model has only the {BASE!r} head")
    unknown = [h for h in heads if h != BASE and h not in getattr(model, "peft_config", {})]
    if unknown:
        raise ValueError(f"unknown head(s) {unknown}; adapters: {sorted(getattr(model, 'peft_config', {}))}")
    seqs, starts = [], []
    for p, a in zip(prompts, answers):
        p_ids = tokenizer(p)["input_ids"]  # type: ignore[operator]
        a_ids = tokenizer(a, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        seqs.append(p_ids + a_ids)
        starts.append(len(p_ids))
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = {h: torch.zeros(len(seqs)) for h in heads}
    device = next(model.parameters()).device
    pad = getattr(tokenizer, "pad_token_id", None) or 0
    was_training = model.training
    model.eval()
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in tqdm(chunks, desc="likra score", disable=not show_progress):
        width = max(len(seqs[i]) for i in idx)
        # Left padding puts every answer at the end, so only the last `keep` positions need logits.
        keep = max(len(seqs[i]) - starts[i] for i in idx) + 1
        ids = torch.full((len(idx), width), pad, dtype=torch.long)  # (B, L)
        attn = torch.zeros(len(idx), width, dtype=torch.long)  # (B, L)
        answer_mask = torch.zeros(len(idx), width, dtype=torch.bool)  # (B, L): True on answer tokens
        for row, i in enumerate(idx):
            n = len(seqs[i])
            ids[row, width - n :] = torch.tensor(seqs[i])
            attn[row, width - n :] = 1
            answer_mask[row, width - n + starts[i] :] = True
        position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, L)
        rep = len(heads)
        kwargs = {"adapter_names": [_peft_name(h) for h in heads for _ in idx]} if is_peft else {}
        logits = model(
            input_ids=ids.repeat(rep, 1).to(device), attention_mask=attn.repeat(rep, 1).to(device),
            position_ids=position_ids.repeat(rep, 1).to(device), logits_to_keep=keep, **kwargs,
        ).logits[:, :-1].float()  # (H·B, keep-1, V): predictions of the last keep-1 tokens
        targets = ids[:, width - keep + 1 :].repeat(rep, 1).to(device)  # (H·B, keep-1)
        token_logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        mask = answer_mask[:, width - keep + 1 :].repeat(rep, 1).to(device)  # (H·B, keep-1)
        summed = (token_logp * mask).sum(-1).cpu()  # (H·B,)
        for k, h in enumerate(heads):
            out[h][idx] = summed[k * len(idx) : (k + 1) * len(idx)]
    model.train(was_training)
    return out


LENGTH_NORMS = ("chars", "bytes")
DEFAULT_LENGTH_NORM = "chars"  # lm-eval's acc_norm, which the Likra paper reports


def byte_lengths(answers: Sequence[str]) -> torch.Tensor:
    """UTF-8 byte length of each answer, ``(N,)`` (the ``"bytes"`` normaliser; also Likra reranking's)."""
    return torch.tensor([len(a.encode("utf-8")) for a in answers], dtype=torch.float32)


def option_lengths(continuations: Sequence[str], length_norm: str = DEFAULT_LENGTH_NORM,
                   answer_prefix: str = " ") -> torch.Tensor:
    """``(N,)`` ``acc_norm`` normaliser of each scored continuation (see the module docstring).

    ``"chars"``: characters of the option, i.e. the continuation without a leading ``answer_prefix``;
    ``"bytes"``: UTF-8 bytes of the whole continuation.
    """
    if length_norm == "bytes":
        return byte_lengths(continuations)
    if length_norm != "chars":
        raise ValueError(f"unknown length_norm {length_norm!r}; expected one of {list(LENGTH_NORMS)}")
    cut = len(answer_prefix)
    return torch.tensor([len(c[cut:] if cut and c.startswith(answer_prefix) else c) for c in continuations],
                        dtype=torch.float32)


def score(
    model: torch.nn.Module,
    tokenizer: object,
    questions: str | Sequence[str],
    candidates: Sequence[str] | Sequence[Sequence[str]],
    mode: str = "likra",
    w: float = 1.0,
    normalise: bool = False,
    batch_size: int = 8,
    length_norm: str = DEFAULT_LENGTH_NORM,
    answer_prefix: str = " ",
) -> list[list[float]]:
    """Likra scores of each question's candidates: log p_pos(a|q) − w·log p_neg(a|q) (or another mode).

    ``questions`` is one prompt with a flat list of candidates, or a list of prompts with one list each. With
    ``normalise`` the score is divided by ``option_lengths(candidates, length_norm, answer_prefix)`` (``acc_norm``;
    default: characters without a leading ``answer_prefix``, lm-eval's convention).
    """
    if isinstance(questions, str):
        questions, candidates = [questions], [candidates]  # type: ignore[list-item]
    if len(questions) != len(candidates):
        raise ValueError(f"{len(questions)} questions but {len(candidates)} candidate lists")
    groups = [list(c) for c in candidates]  # type: ignore[arg-type]
    prompts = [q for q, g in zip(questions, groups) for _ in g]
    answers = [a for g in groups for a in g]
    heads = sorted(likra_head_weights(mode, w))
    logps = answer_logprobs(model, tokenizer, prompts, answers, heads=heads, batch_size=batch_size)
    lengths = option_lengths(answers, length_norm, answer_prefix) if normalise else None
    flat = likra_scores(logps, mode, w, lengths).tolist()
    out, k = [], 0
    for g in groups:
        out.append(flat[k : k + len(g)])
        k += len(g)
    return out


@dataclass
class ChoiceLogprobs:
    """Per-candidate head log-likelihoods of a multiple-choice set, scored once and re-combined for every mode / w.

    Attributes:
        logps: head → ``(ΣK,)`` summed answer log-likelihoods.
        byte_lengths: ``(ΣK,)`` UTF-8 byte lengths of the candidate continuations (``length_norm="bytes"``).
        group_sizes: Candidates per question.
        gold: Index of the gold candidate per question.
        char_lengths: ``(ΣK,)`` character lengths of the options without the answer prefix
            (``length_norm="chars"``, lm-eval's ``acc_norm``); ``None`` in files scored before it existed.
    """

    logps: dict[str, torch.Tensor]
    byte_lengths: torch.Tensor
    group_sizes: list[int]
    gold: list[int]
    char_lengths: torch.Tensor | None = None

    def lengths(self, length_norm: str = DEFAULT_LENGTH_NORM) -> torch.Tensor:
        """The ``acc_norm`` normaliser of every candidate under ``length_norm`` (see the module docstring)."""
        if length_norm == "bytes":
            return self.byte_lengths
        if length_norm != "chars":
            raise ValueError(f"unknown length_norm {length_norm!r}; expected one of {list(LENGTH_NORMS)}")
        if self.char_lengths is None:
            raise ValueError("these ChoiceLogprobs have no char_lengths (scored before they were recorded): rescore "
                             "them with score_choices, or use length_norm='bytes'")
        return self.char_lengths

    def per_question(self, head: str, length_norm: str | None = DEFAULT_LENGTH_NORM) -> list[list[float]]:
        """``head``'s score of every option, one list per question: the summed log-likelihood divided by
        ``lengths(length_norm)`` (``None``: not divided). This is how a base ranks the wrong options when the
        near miss (``negrl.likra.negatives`` pick ``hardest``) is chosen."""
        if head not in self.logps:
            raise ValueError(f"no scores of head {head!r}; scored heads: {sorted(self.logps)}")
        s = self.logps[head] if length_norm is None else self.logps[head] / self.lengths(length_norm)
        flat, out, k = s.tolist(), [], 0
        for n in self.group_sizes:
            out.append(flat[k : k + n])
            k += n
        return out

    def accuracy(self, mode: str, w: float = 1.0, normalise: bool = False,
                 length_norm: str = DEFAULT_LENGTH_NORM) -> float:
        s = likra_scores(self.logps, mode, w, self.lengths(length_norm) if normalise else None)
        pred = choice_predictions(s, self.group_sizes)
        return float((pred == torch.tensor(self.gold)).float().mean())

    def metrics(self, modes: Sequence[str] = LIKRA_MODES, ws: Sequence[float] = (1.0,),
                length_norm: str = DEFAULT_LENGTH_NORM) -> list[dict[str, float | str]]:
        """``[{mode, w, acc, acc_norm}]`` for every mode whose heads were scored, and every ``w``; ``acc_norm``
        normalised by ``length_norm`` (default: lm-eval's characters without the delimiter)."""
        rows: list[dict[str, float | str]] = []
        for mode in modes:
            if set(likra_head_weights(mode)) - set(self.logps):
                continue
            for w in ws if mode not in ("sft", "base") else (1.0,):
                rows.append({"mode": mode, "w": w, "acc": self.accuracy(mode, w),
                             "acc_norm": self.accuracy(mode, w, True, length_norm)})
        return rows


def choice_continuations(problem: Problem, answer_prefix: str = " ") -> list[str]:
    """The scored continuation of each option: ``answer_prefix + option`` (ARC: ``" {option}"``)."""
    if not problem.choices:
        raise ValueError(f"problem {problem.problem_id!r} has no choices")
    return [answer_prefix + c for c in problem.choices]


def gold_index(problem: Problem) -> int:
    """Index of the gold option (``problem.answer`` is its label)."""
    labels = problem.choice_labels or [chr(65 + i) for i in range(len(problem.choices or []))]
    if problem.answer not in labels:
        raise ValueError(f"problem {problem.problem_id!r}: gold label {problem.answer!r} not in {labels}")
    return labels.index(problem.answer)


def score_choices(
    model: torch.nn.Module,
    tokenizer: object,
    problems: Sequence[Problem],
    heads: Sequence[str] = ("pos", "neg", BASE),
    context: str = "",
    answer_prefix: str = " ",
    batch_size: int = 8,
    show_progress: bool = True,
) -> ChoiceLogprobs:
    """Score every option of every problem under ``heads`` (``context`` = few-shot prefix before each prompt)."""
    prompts, answers, sizes, gold = [], [], [], []
    for p in problems:
        conts = choice_continuations(p, answer_prefix)
        prompts += [context + p.prompt] * len(conts)
        answers += conts
        sizes.append(len(conts))
        gold.append(gold_index(p))
    logps = answer_logprobs(model, tokenizer, prompts, answers, heads, batch_size, show_progress)
    return ChoiceLogprobs(logps=logps, byte_lengths=byte_lengths(answers), group_sizes=sizes, gold=gold,
                          char_lengths=option_lengths(answers, "chars", answer_prefix))
