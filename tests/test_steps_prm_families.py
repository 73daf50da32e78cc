"""Off-the-shelf PRM families through ``PRMScorer``: tiny locally built models of each shape (random weights, a
byte-level BPE tokenizer with a chat template), scores compared with the model cards' own reading recipes."""

from __future__ import annotations

import json

import pytest
import torch

from negrl.records import Problem, Rollout
from negrl.steps.prm import PRMScorer
from negrl.steps.prm_formats import FAMILY_DEFAULTS, detect_family, make_format


tokenizers = pytest.importorskip("tokenizers")

CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QUESTION = "Q: what is 3*(1+2)?"
QWEN_STEPS = ["1+2=3\n\n", "3*4=12\n\n", "Answer: 12"]  # negrl's paragraphs steps
SHEPHERD_STEPS = ["Step 1: 1+2=3\n", "Step 2: 3*4=12\n", "Step 3: The answer is 12"]  # step_markers steps


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """Byte-level BPE (GPT-2 style) with BOS added to raw text, Qwen's step separator and chat-template tokens."""
    from transformers import PreTrainedTokenizerFast

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<extra_0>", "<|im_start|>", "<|im_end|>"]
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    corpus = [QUESTION + " " + "".join(SHEPHERD_STEPS).replace("\n", " ки\n") + " ки", "".join(QWEN_STEPS)]
    bpe.train_from_iterator(corpus * 50, trainer)
    bos = bpe.token_to_id("<s>")
    bpe.post_processor = tokenizers.processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                  additional_special_tokens=["<extra_0>", "<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHAT
    assert len(tok(" ки", add_special_tokens=False)["input_ids"]) == 1  # Math-Shepherd's tag is one token
    return tok


def _llama_config(tok, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=tok.pad_token_id, **extra)


@pytest.fixture(scope="module")
def step_head_model(bpe_tokenizer):
    """A Qwen2.5-Math-PRM-shaped model: per-token reward head with two classes."""
    from transformers import LlamaForTokenClassification

    torch.manual_seed(0)
    model = LlamaForTokenClassification(_llama_config(bpe_tokenizer, num_labels=2)).eval()
    with torch.no_grad():
        model.score.weight.mul_(5.0)  # scores far from 0.5, so a wrong read position shows
    return model


@pytest.fixture(scope="module")
def step_tag_model(bpe_tokenizer):
    """A Math-Shepherd-shaped model: a causal LM read at the tag token."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    model = LlamaForCausalLM(_llama_config(bpe_tokenizer)).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(5.0)  # scores far from 0.5, so a wrong read position shows
    return model


def _qwen_reference(model, tok, question, steps):
    """Qwen2.5-Math-PRM's model card recipe: steps joined by <extra_0>, chat template, softmax[:, 1] at <extra_0>."""
    messages = [{"role": "system", "content": FAMILY_DEFAULTS["step_head"].system_prompt},
                {"role": "user", "content": question},
                {"role": "assistant", "content": "<extra_0>".join(s.strip() for s in steps) + "<extra_0>"}]
    conv = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = torch.tensor([tok.encode(conv, add_special_tokens=False)])
    probs = torch.softmax(model(input_ids=ids).logits, dim=-1)  # (1, T, 2)
    where = ids == tok.convert_tokens_to_ids("<extra_0>")
    return probs[where][:, 1].tolist(), where


def _shepherd_reference(model, tok, question, output):
    """Math-Shepherd's model card recipe: ``f"{question} {output}"`` with BOS, softmax over ['+', '-'] at 'ки'."""
    plus, minus = (tok.encode(t, add_special_tokens=False)[0] for t in ("+", "-"))
    tag = tok.encode(" ки", add_special_tokens=False)[-1]
    ids = torch.tensor([tok.encode(f"{question} {output}")])
    assert ids[0, 0].item() == tok.bos_token_id
    scores = model(input_ids=ids).logits[:, :, [plus, minus]].softmax(dim=-1)[:, :, 0]  # (1, T)
    where = ids == tag
    return scores[where].tolist(), where, scores


def test_step_head_scores_match_the_qwen_recipe_at_the_separators(bpe_tokenizer, step_head_model):
    scorer = PRMScorer(step_head_model, bpe_tokenizer, fmt=make_format("step_head"))
    assert scorer.label_ids is None
    expected, where = _qwen_reference(step_head_model, bpe_tokenizer, QUESTION, QWEN_STEPS)
    assert where.sum().item() == 3
    (got,) = scorer.score([QUESTION], [QWEN_STEPS])
    assert got == pytest.approx(expected, abs=1e-5)
    ids, pos = scorer.encode(QUESTION, QWEN_STEPS)
    assert [i for i, t in enumerate(ids) if t == bpe_tokenizer.convert_tokens_to_ids("<extra_0>")] == pos
    # one token earlier (the last token of the step text) gives other numbers: the position matters
    probs = torch.softmax(step_head_model(input_ids=torch.tensor([ids])).logits, -1)[0, :, 1]
    assert [probs[p - 1].item() for p in pos] != pytest.approx(got, abs=1e-3)


def test_step_tag_scores_match_the_math_shepherd_recipe_at_the_tags(bpe_tokenizer, step_tag_model):
    scorer = PRMScorer(step_tag_model, bpe_tokenizer, fmt=make_format("step_tag"))
    output = "Step 1: 1+2=3 ки\nStep 2: 3*4=12 ки\nStep 3: The answer is 12 ки"  # the model card's layout
    expected, where, scores = _shepherd_reference(step_tag_model, bpe_tokenizer, QUESTION, output)
    assert where.sum().item() == 3
    ids, pos = scorer.encode(QUESTION, SHEPHERD_STEPS)
    assert ids == bpe_tokenizer.encode(f"{QUESTION} {output}")  # same text, same BOS
    assert pos == torch.nonzero(where[0]).flatten().tolist()
    (got,) = scorer.score([QUESTION], [SHEPHERD_STEPS])
    assert got == pytest.approx(expected, abs=1e-5)
    assert [scores[0, p - 1].item() for p in pos] != pytest.approx(got, abs=1e-3)  # not the token before the tag


def test_families_batch_with_padding_truncate_and_label(bpe_tokenizer, step_head_model, step_tag_model):
    prompts, lists = [QUESTION, "Q: 1+2?"], [QWEN_STEPS, ["1+2=3\n\n", "Answer: 3"]]
    for model, family in ((step_head_model, "step_head"), (step_tag_model, "step_tag")):
        batched = PRMScorer(model, bpe_tokenizer, fmt=make_format(family), batch_size=2).score(prompts, lists)
        single = [PRMScorer(model, bpe_tokenizer, fmt=make_format(family)).score([p], [s])[0]
                  for p, s in zip(prompts, lists)]
        assert [len(b) for b in batched] == [3, 2]
        for b, s in zip(batched, single):
            assert b == pytest.approx(s, abs=1e-5)
        full, full_pos = PRMScorer(model, bpe_tokenizer, fmt=make_format(family)).encode(QUESTION, QWEN_STEPS)
        short = PRMScorer(model, bpe_tokenizer, fmt=make_format(family), max_length=full_pos[-1])  # cuts the last
        ids, pos = short.encode(QUESTION, QWEN_STEPS)
        assert ids == full[: full_pos[-1]] and pos == [*full_pos[:-1], -1]
        assert short.score([QUESTION], [QWEN_STEPS])[0][-1] is None
    problem = Problem(problem_id="p", domain="math", prompt=QUESTION, answer="12")
    rollout = Rollout(rollout_id="p#0", problem_id="p", completion="".join(QWEN_STEPS))
    scorer = PRMScorer(step_head_model, bpe_tokenizer, threshold=0.5, fmt=make_format("step_head"))
    (lab,) = scorer.label([problem], [rollout], rule="paragraphs")
    assert lab.values == pytest.approx(scorer.score([QUESTION], [QWEN_STEPS])[0])
    assert lab.labels == [v >= 0.5 for v in lab.values] and lab.source == "prm"


def test_separator_that_is_no_token_boundary_is_an_error(bpe_tokenizer, step_tag_model):
    # " к" followed by a step starting with "и" tokenizes as the single token " ки", which ends past the separator
    scorer = PRMScorer(step_tag_model, bpe_tokenizer, fmt=make_format("step_tag", {"separator": " к"}))
    assert scorer.encode("Q", ["1+2=3\n", "x"])[1]  # fine when the separator is a token of its own
    with pytest.raises(ValueError, match="not a token boundary"):
        scorer.encode("Q", ["1+2=3", "и"])


def test_from_pretrained_selects_the_family(bpe_tokenizer, step_head_model, step_tag_model, tmp_path):
    from negrl.modeling import save_policy

    # Directories without prm.json, as downloaded: the family is named (or detected from the architecture).
    save_policy(step_tag_model, bpe_tokenizer, tmp_path / "shepherd")
    with pytest.raises(ValueError, match="family='step_tag'"):
        PRMScorer.from_pretrained(tmp_path / "shepherd", device="cpu")
    loaded = PRMScorer.from_pretrained(tmp_path / "shepherd", device="cpu", family="step_tag")
    assert loaded.format == FAMILY_DEFAULTS["step_tag"] and loaded.threshold == 0.5
    output = "Step 1: 1+2=3 ки\nStep 2: 3*4=12 ки\nStep 3: The answer is 12 ки"
    ref = _shepherd_reference(step_tag_model, bpe_tokenizer, QUESTION, output)[0]
    assert loaded.score([QUESTION], [SHEPHERD_STEPS])[0] == pytest.approx(ref, abs=1e-5)

    head = tmp_path / "head"
    step_head_model.save_pretrained(head)
    bpe_tokenizer.save_pretrained(head)
    loaded = PRMScorer.from_pretrained(head, device="cpu", family="step_head", threshold=0.3)
    ref, _ = _qwen_reference(step_head_model, bpe_tokenizer, QUESTION, QWEN_STEPS)
    assert loaded.threshold == 0.3 and loaded.score([QUESTION], [QWEN_STEPS])[0] == pytest.approx(ref, abs=1e-5)

    # save_pretrained writes the family and its fields to prm.json; loading needs no family then
    loaded.save_pretrained(tmp_path / "head_saved")
    meta = json.loads((tmp_path / "head_saved" / "prm.json").read_text())
    assert meta["family"] == "step_head" and meta["separator"] == "<extra_0>" and meta["threshold"] == 0.3
    again = PRMScorer.from_pretrained(tmp_path / "head_saved", device="cpu")
    assert again.format == loaded.format and again.score([QUESTION], [QWEN_STEPS])[0] == pytest.approx(ref, abs=1e-5)

    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="config.json"):  # neither prm.json nor a model config: transformers says so
        PRMScorer.from_pretrained(tmp_path / "empty", device="cpu")
    with pytest.raises(ValueError, match="unknown PRM format field"):
        PRMScorer.from_pretrained(head, device="cpu", family="step_head", seperator="<extra_0>")
    with pytest.raises(ValueError, match="unknown PRM family"):
        PRMScorer.from_pretrained(head, device="cpu", family="qwen")


def test_detect_family():
    assert detect_family({"positive_token": "+", "negative_token": "-", "threshold": 0.5}, []) == "negrl"
    assert detect_family({"family": "step_tag"}, []) == "step_tag"
    assert detect_family(None, ["Qwen2ForProcessRewardModel"]) == "step_head"  # Qwen2.5-Math-PRM's config.json
    assert detect_family(None, ["MistralForCausalLM"]) is None  # Math-Shepherd: must be named


def test_negrl_prm_json_keeps_its_keys(tiny_model, char_tokenizer, tmp_path):
    """negrl's own directories are written (and so keyed and read) as before: no family field."""
    PRMScorer(tiny_model, char_tokenizer, threshold=0.4).save_pretrained(tmp_path / "own")
    meta = json.loads((tmp_path / "own" / "prm.json").read_text())
    assert meta == {"positive_token": "+", "negative_token": "-", "threshold": 0.4, "max_length": 512}
    loaded = PRMScorer.from_pretrained(tmp_path / "own", device="cpu")
    assert loaded.format == FAMILY_DEFAULTS["negrl"] and loaded.max_length == 512 and loaded.threshold == 0.4


def test_prm_options_enter_the_label_stage_key_only_when_given():
    from negrl.steps.sources import LabelSettings, source_settings

    r = [Rollout(rollout_id="p#0", problem_id="p", completion="x")]
    plain = source_settings("prm", LabelSettings(prm_model="m"), r)
    assert "prm_options" not in plain
    keyed = source_settings("prm", LabelSettings(prm_model="m", prm_options={"family": "step_tag"}), r)
    assert keyed == {**plain, "prm_options": {"family": "step_tag"}}


def test_label_source_prm_reads_an_off_the_shelf_prm_with_prm_options(bpe_tokenizer, step_tag_model, tmp_path):
    from negrl.modeling import save_policy
    from negrl.steps.sources import LabelSettings, label_steps

    save_policy(step_tag_model, bpe_tokenizer, tmp_path / "shepherd")
    problem = Problem(problem_id="p", domain="math", prompt=QUESTION, answer="12")
    rollout = Rollout(rollout_id="p#0", problem_id="p", completion="".join(SHEPHERD_STEPS))
    settings = LabelSettings(segment_rule="step_markers", prm_model=str(tmp_path / "shepherd"),
                             prm_options={"family": "step_tag"})
    (lab,) = label_steps("prm", [problem], [rollout], None, settings, cache_dir=tmp_path / "labels")
    output = "Step 1: 1+2=3 ки\nStep 2: 3*4=12 ки\nStep 3: The answer is 12 ки"
    assert [s.text for s in lab.steps] == SHEPHERD_STEPS
    assert lab.values == pytest.approx(_shepherd_reference(step_tag_model, bpe_tokenizer, QUESTION, output)[0],
                                       abs=1e-5)
