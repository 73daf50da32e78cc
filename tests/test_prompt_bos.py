"""The BOS rule: a tokenizer that adds BOS to plain text gets it exactly once on every stage's prompt ids.

Checked on the tiny byte-level BPE of ``test_steps_prm_families`` (BOS from its post-processor, a ChatML template
without BOS), the same tokenizer with ``add_bos_token`` and a Llama-style template that renders ``{{ bos_token }}``,
and on the character tokenizer (adds no BOS: prompts unchanged).
"""

from __future__ import annotations

import copy

import pytest
import torch

from negrl.completion_tokens import tokenize_weighted
from negrl.generation import (
    GenerationConfig,
    encode_prompts,
    format_prompt,
    generate_rollouts,
    tokenizer_adds_bos,
    with_bos,
)
from negrl.records import Problem, Rollout, Verdict
from negrl.sft import cpu_safe_sft_config, prompt_completion_dataset, tokenize_sft_rows, train_sft
from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo
from negrl.trainers.step_dpo import tokenize_pair
from tests.test_steps_prm_families import CHAT, _llama_config, bpe_tokenizer  # noqa: F401  (the shared fixture)


QUESTION = "Q: what is 3*(1+2)?\n"
COMPLETION = "1+2=3\n\n3*4=12\n\nAnswer: 12"


def _variant(tok, kind: str):
    if kind == "post_processor":  # BOS from a TemplateProcessing post-processor, ChatML without BOS
        return tok
    tok = copy.deepcopy(tok)
    if kind == "add_bos_token":  # BOS from the add_bos_token flag, the way Llama / Mistral tokenizers set it
        tok.add_bos_token = False
        assert not tokenizer_adds_bos(tok)
        tok.add_bos_token = True
    elif kind == "llama_chat":  # a template that renders BOS itself (Llama 3, Mistral, Gemma, DeepSeek)
        tok.chat_template = "{{ bos_token }}" + CHAT
    return tok


@pytest.fixture(params=["post_processor", "add_bos_token", "llama_chat"])
def bos_tokenizer(request, bpe_tokenizer):  # noqa: F811
    tok = _variant(bpe_tokenizer, request.param)
    assert tokenizer_adds_bos(tok)
    return tok


def _expected(tok, use_chat_template: bool) -> list[int]:
    """The prompt ids every stage must see: BOS once, then the prompt as the template (or raw text) has it."""
    if use_chat_template:
        text = tok.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                       add_generation_prompt=True)  # fmt: skip
        text = text.removeprefix(tok.bos_token)
    else:
        text = QUESTION
    return [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("use_chat_template", [False, True])
def test_format_prompt_gives_bos_exactly_once(bos_tokenizer, use_chat_template):
    tok = bos_tokenizer
    prompt = format_prompt(QUESTION, tok, use_chat_template)
    ids = encode_prompts([prompt], tok)[0]
    assert ids == _expected(tok, use_chat_template)
    assert ids.count(tok.bos_token_id) == 1
    assert with_bos(prompt, tok) == prompt  # idempotent: a built prompt never gets a second BOS


def test_no_bos_when_the_tokenizer_adds_none(char_tokenizer, bpe_tokenizer):  # noqa: F811
    assert not tokenizer_adds_bos(char_tokenizer)
    assert format_prompt(QUESTION, char_tokenizer, False) == QUESTION  # the embedded path is unchanged
    off = copy.deepcopy(bpe_tokenizer)
    off.add_bos_token = False  # the documented way to turn BOS off for every stage
    assert encode_prompts([format_prompt(QUESTION, off, False)], off)[0] == off(QUESTION)["input_ids"]
    assert off.bos_token_id not in encode_prompts([format_prompt(QUESTION, off, True)], off)[0]


@pytest.mark.parametrize("use_chat_template", [False, True])
def test_every_stage_feeds_the_same_prompt_ids(bos_tokenizer, use_chat_template, tmp_path):
    """Sampling, Monte-Carlo continuations, step-DPO pairs, weighted rows and SFT: one BOS, the same prompt ids."""
    from transformers import LlamaForCausalLM

    tok = bos_tokenizer
    want = _expected(tok, use_chat_template)
    problem = Problem(problem_id="p", domain="arithmetic", prompt=QUESTION, answer="9")
    prompt = format_prompt(QUESTION, tok, use_chat_template)
    torch.manual_seed(0)
    model = LlamaForCausalLM(_llama_config(tok)).eval()

    fed: list[list[int]] = []  # the unpadded rows `generate` is given
    generate = model.generate

    def spy(input_ids, attention_mask, **kwargs):
        fed.extend(row[mask.bool()].tolist() for row, mask in zip(input_ids, attention_mask))
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    model.generate = spy
    config = GenerationConfig(num_samples=1, max_new_tokens=3, show_progress=False,
                              use_chat_template=use_chat_template)  # fmt: skip
    generate_rollouts([problem], model, tok, config)
    assert fed == [want]

    completion_ids = tok(COMPLETION, add_special_tokens=False)["input_ids"]
    rollout = Rollout(rollout_id="p#0", problem_id="p", completion=COMPLETION, completion_ids=completion_ids)
    seen: list = []
    label_monte_carlo([problem], [rollout], [Verdict(rollout_id="p#0", correct=False)], tokenizer=tok,
                      config=MonteCarloConfig(k=1, reuse_rollouts=False, show_progress=False, early_stop=False,
                                              use_chat_template=use_chat_template),
                      continue_fn=lambda prompts, seed: seen.extend(prompts) or ["Answer: 0"] * len(prompts))
    assert seen and all(p[: len(want)] == want and p.count(tok.bos_token_id) == 1 for p in seen)

    assert tokenize_pair(tok, prompt, "1+2=3\n\n", "1+2=4\n\n")["prompt_ids"] == want
    assert tokenize_weighted(tok, prompt, COMPLETION)["input_ids"][: len(want)] == want

    raw_rows = prompt_completion_dataset([prompt, QUESTION], [COMPLETION, COMPLETION])
    tokenised = tokenize_sft_rows(raw_rows, tok)
    row = tokenised[0]
    assert row["input_ids"] == want + completion_ids + [tok.eos_token_id]
    assert row["completion_mask"] == [0] * len(want) + [1] * (len(completion_ids) + 1)
    if not use_chat_template:  # a raw gold prompt (sft.gold_dataset) gets the BOS generation gives it
        assert tokenised[1]["input_ids"] == row["input_ids"]
    args = cpu_safe_sft_config(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2,
                               report_to=[], save_strategy="no", disable_tqdm=True)  # fmt: skip
    trainer = train_sft(model, tok, raw_rows.select([0]), args)
    assert trainer.train_dataset[0]["input_ids"] == row["input_ids"]  # what SFT trained on: BOS once


def test_sft_tokenisation_of_the_char_tokenizer_is_trl_own(char_tokenizer, tiny_model, tmp_path):
    """The embedded path (``make demo``) trains on the very ids and labels TRL's own tokenisation gave."""
    from trl import SFTTrainer

    rows = prompt_completion_dataset(["Q: 2+3\n", "Q: 9-4*2\n"], ["A: 5", "9-8=1\nA: 1"])
    args = cpu_safe_sft_config(output_dir=str(tmp_path / "sft"), report_to=[], max_length=64)
    char_tokenizer.padding_side = "right"
    theirs = SFTTrainer(model=tiny_model, args=args, train_dataset=rows, processing_class=char_tokenizer)
    ours = SFTTrainer(model=tiny_model, args=args, train_dataset=tokenize_sft_rows(rows, char_tokenizer),
                      processing_class=char_tokenizer)  # fmt: skip
    char_tokenizer.padding_side = "left"
    for column in ("input_ids", "labels"):
        assert ours.train_dataset[column] == theirs.train_dataset[column]


def test_sft_rows_train_the_generated_ids_when_they_have_them(bpe_tokenizer):  # noqa: F811
    """``completion_ids`` (rft_rows with a tokenizer) are trained as generated, not re-encoded from the text."""
    tok = bpe_tokenizer
    encode = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    # ids generated token by token can differ from a re-encoding of their text (BPE merges across the cut)
    cut = next(i for i in range(1, len(COMPLETION)) if encode(COMPLETION[:i]) + encode(COMPLETION[i:]) != encode(COMPLETION))
    generated = encode(COMPLETION[:cut]) + encode(COMPLETION[cut:])
    rows = prompt_completion_dataset([QUESTION, QUESTION], [COMPLETION] * 2).add_column(
        "completion_ids", [generated, None])
    prompt = [tok.bos_token_id] + encode(QUESTION)
    out = tokenize_sft_rows(rows, tok)
    assert out[0]["input_ids"] == prompt + generated + [tok.eos_token_id]
    assert out[1]["input_ids"] == prompt + encode(COMPLETION) + [tok.eos_token_id]
