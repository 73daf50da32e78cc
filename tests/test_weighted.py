"""Weighted-completion machinery: char-span weights → token weights, collator padding, per-token log-probs."""

from __future__ import annotations

import pytest
import torch

from negrl.trainers.weighted import (
    WeightedCompletionCollator,
    completion_token_logps,
    sequence_logps,
    span_weights,
    tokenize_weighted,
)


PROMPT = "Q: (3+4)*2\n"
COMPLETION = "3+4=7\n7*2=14\nAnswer: 14"


def test_char_tokenizer_weights_line_up_with_step_offsets(char_tokenizer):
    # Steps of the completion as char spans: line 0 = [0, 6), line 1 = [6, 13), final line = [13, 23).
    spans = [(0, 6, 0.5), (6, 13, -1.0)]
    out = tokenize_weighted(char_tokenizer, PROMPT, COMPLETION, spans=spans, default_weight=1.0)
    n_prompt = len(PROMPT)
    ids, mask, w = out["input_ids"], out["completion_mask"], out["token_weights"]
    assert len(ids) == len(PROMPT) + len(COMPLETION) + 1  # + <eos>
    assert mask == [0] * n_prompt + [1] * (len(COMPLETION) + 1)
    assert ids[-1] == char_tokenizer.eos_token_id
    # The tokens weighted 0.5 decode to exactly the first step, those weighted -1 to the second.
    first = [t for t, x in zip(ids, w) if x == 0.5]
    second = [t for t, x in zip(ids, w) if x == -1.0]
    assert first == char_tokenizer("3+4=7\n", add_special_tokens=False)["input_ids"]
    assert second == char_tokenizer("7*2=14\n", add_special_tokens=False)["input_ids"]
    assert w[:n_prompt] == [0.0] * n_prompt
    assert w[n_prompt + 13 :] == [1.0] * (len(COMPLETION) - 13 + 1)


def test_bpe_token_straddling_a_boundary_takes_weight_of_its_start():
    offsets = [(0, 3), (3, 7), (7, 9)]  # a BPE tokenisation of a 9-char text
    spans = [(0, 5, 0.5), (5, 9, 2.0)]  # the boundary at 5 falls inside token 1 = [3, 7)
    assert span_weights(offsets, spans, default_weight=1.0) == [0.5, 0.5, 2.0]
    assert span_weights(offsets, [(4, 9, 3.0)], default_weight=1.0) == [1.0, 1.0, 3.0]


def test_max_length_no_eos_and_bad_spans(char_tokenizer):
    out = tokenize_weighted(char_tokenizer, PROMPT, COMPLETION, add_eos=False, max_length=len(PROMPT) + 3)
    assert char_tokenizer.decode(out["input_ids"]) == PROMPT + COMPLETION[:3]
    assert out["completion_mask"][-3:] == [1, 1, 1] and out["token_weights"][-1] == 1.0
    with pytest.raises(ValueError, match="outside the completion"):
        tokenize_weighted(char_tokenizer, PROMPT, COMPLETION, spans=[(0, 99, 0.5)])
    with pytest.raises(ValueError, match="overlap"):
        tokenize_weighted(char_tokenizer, PROMPT, COMPLETION, spans=[(0, 6, 0.5), (5, 8, 0.5)])


def test_collator_right_pads_and_stacks_scalars(char_tokenizer):
    a = {**tokenize_weighted(char_tokenizer, "ab", "cd", spans=[(0, 1, 0.5)]), "advantage": 0.25, "text": "x"}
    b = {**tokenize_weighted(char_tokenizer, "a", "b", add_eos=False), "advantage": -1, "ref_logp": 0.0}
    batch = WeightedCompletionCollator(pad_token_id=char_tokenizer.pad_token_id, scalar_columns=("advantage",))([a, b])
    assert batch["input_ids"].shape == (2, 5)
    assert batch["input_ids"][1, 2:].tolist() == [char_tokenizer.pad_token_id] * 3
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert batch["completion_mask"].tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    assert batch["token_weights"].tolist() == [[0.0, 0.0, 0.5, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]]
    assert batch["advantage"].tolist() == [0.25, -1.0]
    assert "ref_logp" not in batch and "text" not in batch


def test_token_logps_match_log_softmax_and_sequence_sum(char_tokenizer, tiny_model):
    rows = [tokenize_weighted(char_tokenizer, PROMPT, COMPLETION), tokenize_weighted(char_tokenizer, "Q: 1+1\n", "2")]
    batch = WeightedCompletionCollator(char_tokenizer.pad_token_id)(rows)
    tiny_model.eval()
    logps = completion_token_logps(tiny_model, batch["input_ids"], batch["attention_mask"])
    assert logps.shape == (2, batch["input_ids"].shape[1] - 1)
    full = torch.log_softmax(tiny_model(input_ids=batch["input_ids"]).logits, -1)
    i = len(PROMPT)  # predicting the first completion token of row 0
    assert torch.allclose(logps[0, i - 1], full[0, i - 1, batch["input_ids"][0, i]], atol=1e-5)
    seq = sequence_logps(tiny_model, rows, char_tokenizer.pad_token_id, batch_size=1)
    expected = (logps * batch["completion_mask"][:, 1:]).sum(-1)
    assert torch.allclose(torch.tensor(seq), expected, atol=1e-4)


def test_real_bpe_tokenizer_weights_follow_token_starts():
    """A byte-level BPE (merges across characters): each token's weight is the span holding its first character."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>"], show_progress=False)
    core.train_from_iterator([COMPLETION, "12+34=46\n46*2=92\nAnswer: 92"] * 20, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    spans = [(0, 6, 0.5), (6, 13, -1.0)]
    out = tokenize_weighted(tok, PROMPT, COMPLETION, spans=spans)
    enc = tok(COMPLETION, add_special_tokens=False, return_offsets_mapping=True)
    assert len(enc["input_ids"]) < len(COMPLETION)  # merges happened
    n_prompt = out["completion_mask"].index(1)
    assert out["input_ids"][n_prompt:-1] == enc["input_ids"]
    for (start, _), w in zip(enc["offset_mapping"], out["token_weights"][n_prompt:-1]):
        assert w == (0.5 if start < 6 else -1.0 if start < 13 else 1.0)
    assert tok.decode(out["input_ids"][n_prompt:-1]) == COMPLETION


def test_lora_init_depends_on_args_seed_only(char_tokenizer, tmp_path):
    """The adapter is wrapped before Trainer.__init__ seeds: its init must not depend on what the process ran
    before (a variant's LoRA would otherwise depend on the variants trained earlier in the same process)."""
    from datasets import Dataset
    from peft import LoraConfig

    from negrl.modeling import build_tiny_llama
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer

    rows = Dataset.from_list([{"prompt": "Q: 1+1\n", "completion": "A: 2", "advantage": 1.0, "ref_logp": -1.0}])

    def lora_a(rng_draws: int, seed: int) -> torch.Tensor:
        model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
        torch.rand(rng_draws)  # whatever the process did before
        args = BCPGNSAConfig(output_dir=str(tmp_path), report_to=[], seed=seed, disable_tqdm=True)
        trainer = BCPGNSATrainer(model, args, train_dataset=rows, processing_class=char_tokenizer,
                                 peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                        task_type="CAUSAL_LM"))
        return next(p for n, p in trainer.model.named_parameters() if "lora_A" in n).detach().clone()

    assert torch.equal(lora_a(1, seed=3), lora_a(1000, seed=3))
    assert not torch.equal(lora_a(1, seed=3), lora_a(1, seed=4))
