"""Likra (Hamdan & Yuret 2025, arXiv 2503.14391): a likelihood-ratio model of a positive and a negative LoRA head.

    heads      two named adapters ``pos`` / ``neg`` on one frozen base, trained by SFT, power-of-two checkpoints
    scoring    batched answer log-likelihoods under both heads (and the base); score = log p_pos − w·log p_neg
    negatives  which wrong answer trains the negative head (own / other question / unrelated; contamination)
    rerank     Likra as a reranker of sampled solutions on generation tasks
"""

from negrl.likra.heads import (
    HEADS,
    LikraConfig,
    attach_heads,
    list_checkpoints,
    load_head,
    power_of_two_steps,
    tokenize_pairs,
    train_head,
)
from negrl.likra.scoring import BASE, ChoiceLogprobs, answer_logprobs, score, score_choices


__all__ = [
    "BASE", "HEADS", "ChoiceLogprobs", "LikraConfig", "answer_logprobs", "attach_heads", "list_checkpoints",
    "load_head", "power_of_two_steps", "score", "score_choices", "tokenize_pairs", "train_head",
]
