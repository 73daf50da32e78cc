"""A character-level tokenizer for the embedded tasks, as a transformers fast tokenizer.

Every printable ASCII character and ``"\\n"`` is one token, plus ``<pad>`` (0), ``<bos>`` (1), ``<eos>`` (2) and
``<unk>`` (3): 100 tokens in all, enough for every embedded task (arithmetic, path-star graphs, multiple choice).

Built as a ``tokenizers`` BPE model with the character vocabulary and no merges (a pure character tokenizer) and a
``Fuse`` decoder (without it ``decode`` joins characters with spaces). No BOS is added. Because it is
character-level, tokenising a prompt and prompt + completion separately always gives a shared prefix, so step
offsets map to token positions one to one.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARACTERS = "\n" + "".join(chr(c) for c in range(32, 127))
assert set(string.digits) <= set(CHARACTERS)


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """Return the embedded character tokenizer (``pad_token_id=0, bos_token_id=1, eos_token_id=2``)."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + list(CHARACTERS))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    # Split into single characters before the (merge-free) BPE model so spaces and newlines stay tokens.
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",  # generation; training collators pad on the right themselves
        clean_up_tokenization_spaces=False,
    )
    return tok
