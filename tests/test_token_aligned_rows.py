"""Trained rows hold the tokens the policy generated (issue: cuts re-encoded as text).

Per-step DPO rejected sides (paper format), shared-prefix prompts and AWR truncated negatives are cut from the
rollouts' generated ids on the largest token boundary inside the step, never re-encoded from text cut at character
offsets. Checked on the char tokenizer and on a tiny byte-level BPE tokenizer (GPT-2 pre-tokenisation, chat template)
whose merges reproduce what SmolLM2 does: a generated ``Ċ Ċ`` re-encodes as one ``ĊĊ`` at the end of a cut text, and
a ``ĊĠĠĠ`` token straddles the end of a line when the next line starts with spaces.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from negrl.builders import AWRRowConfig, BuildStats, PairConfig, awr_rows, outcome_dpo_pairs, step_dpo_pairs
from negrl.generation import format_prompt
from negrl.records import Problem, Rollout, Step, StepLabels, Verdict
from negrl.steps.segment import segment


tokenizers = pytest.importorskip("tokenizers")

CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
MATH = Problem(problem_id="math", domain="arithmetic", prompt="Q: what is 3*(1+2)?", answer="9")
CODE = Problem(problem_id="code", domain="arithmetic", prompt="Write f(x) = x + 1.", answer="")
# (rollout id, problem, completion, correct, segmentation rule, critical step of a wrong one)
SAMPLES = [
    ("math#0", MATH, "1+2=3\n\n3*3=9\n\nAnswer: 9", True, "paragraphs", None),
    ("math#1", MATH, "1+2=3\n\n3*4=12\n\nAnswer: 12", False, "paragraphs", 1),
    ("math#2", MATH, "1+2=4\n\n3*4=12\n\nAnswer: 12", False, "paragraphs", 0),
    ("code#0", CODE, "def f(x):\n    y = x + 1\n    return y\n", True, "lines", None),
    ("code#1", CODE, "def f(x):\n    y = x + 2\n    return y\n", False, "lines", 1),
    ("code#2", CODE, "def f(x):\n    y = x + 1\n    return y + 1\n", False, "lines", 2),
]


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """Byte-level BPE (GPT-2 regex pre-tokeniser, like SmolLM2's) with ``ĊĊ`` and ``ĊĠĠĠ`` merges, chat template."""
    from transformers import PreTrainedTokenizerFast

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=420, special_tokens=specials,
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    texts = [s[2] for s in SAMPLES]
    corpus = texts + [t[:i] for t in texts for i in range(len(t)) if t[:i].endswith("\n\n")]  # "\n\n" at text ends
    bpe.train_from_iterator(corpus * 50, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                  additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHAT
    return tok


def _generated(tok, text: str) -> list[int]:
    """Ids a policy could generate for ``text`` that are not its canonical encoding: the pieces before each ``r``
    encoded apart (BPE: ``Answe r`` for ``Answer``, ``Ġ return`` for ``Ġreturn``)."""
    return [i for piece in re.split(r"(?=r)", text) if piece for i in _encode(tok, piece)]


def _records(tok, ids_of=None, prefix_value: float = 1.0):
    """Rollouts of ``SAMPLES`` (ids: ``ids_of(i, text)``, default ``_generated``), verdicts, step labels."""
    rollouts, verdicts, labels = [], [], []
    for i, (rid, problem, text, ok, rule, pit) in enumerate(SAMPLES):
        ids = ids_of(i, text) if ids_of else _generated(tok, text)
        rollouts.append(Rollout(rollout_id=rid, problem_id=problem.problem_id, completion=text, sample_index=i,
                                completion_ids=ids))
        verdicts.append(Verdict(rollout_id=rid, correct=ok))
        if not ok:
            steps = segment(text, rule)
            values = [1.0 if j < pit else 0.0 for j in range(len(steps))]
            labels.append(StepLabels(rollout_id=rid, steps=steps, values=values, labels=[v > 0 for v in values],
                                     first_error=pit, source="mc", prefix_value=prefix_value))
    return [MATH, CODE], rollouts, verdicts, labels


@pytest.fixture(params=["char", "bpe"])
def setup(request, char_tokenizer, bpe_tokenizer):
    """(tokenizer, prompt_fn, problems, rollouts with generated ids, verdicts, Monte-Carlo-like step labels)."""
    tok = char_tokenizer if request.param == "char" else bpe_tokenizer
    chat = request.param == "bpe"
    prompt_fn = lambda p: format_prompt(p.prompt, tok, chat)  # noqa: E731
    problems, rollouts, verdicts, labels = _records(tok)
    assert all(tok.decode(r.completion_ids, skip_special_tokens=True) == r.completion for r in rollouts)
    return tok, prompt_fn, problems, rollouts, verdicts, labels


def _encode(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _boundary(tok, ids: list[int], text: str, end: int) -> int:
    """The largest n whose ids[:n] decode to a prefix of ``text`` no longer than ``end`` (a plain linear scan)."""
    return max(n for n in range(len(ids) + 1)
               if len(d := tok.decode(ids[:n], skip_special_tokens=True)) <= end and text.startswith(d))


def _ends(rollout: Rollout, step: Step) -> bool:
    """Whether the step is the last one of a finished sample (the only rejected side that gets an EOS)."""
    return step.end >= len(rollout.completion.rstrip()) and rollout.finish_reason == "stop"


def _source(awr_row: dict, rollouts: list[Rollout]) -> Rollout:
    """The rollout an AWR row was built from (the samples of a problem differ within their first steps)."""
    correct = {s[0]: s[3] for s in SAMPLES}
    found = [r for r in rollouts if r.problem_id == awr_row["problem_id"] and correct[r.rollout_id] ==
             awr_row["correct"] and r.completion.startswith(awr_row["completion"])]
    assert len(found) == 1
    return found[0]


def _pit(rid: str, rollouts, labels):
    r = next(r for r in rollouts if r.rollout_id == rid)
    lab = next(lab for lab in labels if lab.rollout_id == rid)
    return r, lab.steps[lab.first_error]


def test_the_bpe_fixture_re_encodes_cut_text_into_other_tokens(bpe_tokenizer):
    """The premise: re-encoding ``completion[:step.end]`` gives tokens the policy did not generate."""
    tok = bpe_tokenizer
    text = SAMPLES[1][2]
    ids = _encode(tok, text)
    end = len("1+2=3\n\n")
    assert tok.convert_ids_to_tokens(_encode(tok, text[:end]))[-1] == "ĊĊ"  # one token at the end of a cut text
    assert tok.convert_ids_to_tokens(ids[:_boundary(tok, ids, text, end)])[-2:] == ["Ċ", "Ċ"]  # two, as generated
    code = SAMPLES[4][2]
    cids = _encode(tok, code)
    line_end = len("def f(x):\n")
    assert "ĊĠĠĠ" in tok.convert_ids_to_tokens(cids)
    assert len(tok.decode(cids[:_boundary(tok, cids, code, line_end)])) < line_end  # a token straddles the line end


def test_paper_rejected_sides_end_on_a_generated_token_boundary_without_eos(setup):
    tok, prompt_fn, problems, rollouts, verdicts, labels = setup
    stats = BuildStats()
    rows = step_dpo_pairs(problems, rollouts, verdicts, labels, PairConfig(chosen="first"), prompt_fn,
                          stats=stats, tokenizer=tok)
    assert sorted(rows["rejected_id"]) == ["code#1", "code#2", "math#1", "math#2"] and not stats.dropped
    by_text = {r.completion: r.completion_ids for r in rollouts}
    for row in rows:
        r, step = _pit(row["rejected_id"], rollouts, labels)
        ids = r.completion_ids
        n = _boundary(tok, ids, r.completion, step.end)
        assert row["rejected_token_ids"] == ids[:n]  # the largest token boundary inside the pit step
        assert len(tok.decode(ids[:n])) > step.start  # which keeps at least one token of the pit step
        assert tok.decode(row["rejected_token_ids"]) == row["rejected"]
        assert tok.eos_token_id not in row["rejected_token_ids"]
        assert row["rejected_eos"] == _ends(r, step)  # EOS only after a pit that is the last step of a finished sample
        assert row["chosen_token_ids"] == by_text[row["chosen"]] and row["chosen_eos"]
        assert row["prompt_token_ids"] is None and row["prompt"] == prompt_fn(next(
            p for p in problems if p.problem_id == row["problem_id"]))


def test_shared_prefix_prompts_are_the_prompt_ids_plus_the_generated_prefix(setup):
    tok, prompt_fn, problems, rollouts, verdicts, labels = setup
    rows = step_dpo_pairs(problems, rollouts, verdicts, labels, PairConfig(format="shared_prefix", chosen="first"),
                          prompt_fn, tokenizer=tok)
    assert sorted(rows["rejected_id"]) == ["code#1", "code#2", "math#1", "math#2"]
    for row in rows:
        r, step = _pit(row["rejected_id"], rollouts, labels)
        problem = next(p for p in problems if p.problem_id == row["problem_id"])
        prompt_ids = _encode(tok, prompt_fn(problem))
        ids = r.completion_ids
        a, b = _boundary(tok, ids, r.completion, step.start), _boundary(tok, ids, r.completion, step.end)
        assert b > a
        full_prompt = row["prompt_token_ids"] if a else prompt_ids  # a pit at step 0 has no prefix to add
        assert full_prompt == prompt_ids + ids[:a]
        assert row["rejected_token_ids"] == ids[a:b] and row["rejected_eos"] == _ends(r, step)
        assert row["prompt"] == prompt_fn(problem) + tok.decode(ids[:a])
        assert tok.decode(ids[a:b]) == row["rejected"]
        # the chosen side continues the same generated prefix: prompt + chosen are a correct sample's own tokens
        assert any(full_prompt[len(prompt_ids):] + row["chosen_token_ids"] == c.completion_ids
                   for c in rollouts if c.problem_id == r.problem_id and c.rollout_id != r.rollout_id)


def test_awr_rows_carry_generated_ids_cut_inside_the_critical_step(setup):
    tok, prompt_fn, problems, rollouts, verdicts, labels = setup
    rows = awr_rows(problems, rollouts, verdicts, labels, AWRRowConfig(), prompt_fn, tokenizer=tok)
    assert len(rows) == len(SAMPLES)
    by_id = {r.rollout_id: r for r in rollouts}
    for row in rows:
        source = _source(row, rollouts)
        if row["correct"]:
            assert row["completion_ids"] == source.completion_ids and row["add_eos"]
            continue
        _, step = _pit(source.rollout_id, rollouts, labels)
        ids = by_id[source.rollout_id].completion_ids
        n = _boundary(tok, ids, source.completion, step.end)
        assert row["completion_ids"] == ids[:n] and not row["add_eos"]
        assert tok.decode(ids[:n]) == row["completion"]
        assert max(span[1] for span in row["spans"]) <= len(row["completion"])


def _tiny_llama(tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return LlamaForCausalLM(config)


def _unpadded(batch, i: int) -> list[int]:
    return batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()


@pytest.mark.parametrize("fmt", ["paper", "shared_prefix"])
def test_step_dpo_trainer_feeds_the_prompt_ids_plus_the_generated_ids(setup, fmt, tmp_path):
    from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer

    tok, prompt_fn, problems, rollouts, verdicts, labels = setup
    rows = step_dpo_pairs(problems, rollouts, verdicts, labels, PairConfig(format=fmt, chosen="first"), prompt_fn,
                          tokenizer=tok)
    args = StepDPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=1, disable_tqdm=True,
                         max_length=512)
    trainer = StepDPOTrainer(model=_tiny_llama(tok), args=args, train_dataset=rows, processing_class=tok)
    features = [trainer.train_dataset[i] for i in range(len(rows))]
    batch = trainer.data_collator(features)  # what the model is fed: chosen rows, then rejected rows
    eos = tok.eos_token_id
    for i, row in enumerate(rows):
        r, step = _pit(row["rejected_id"], rollouts, labels)
        problem = next(p for p in problems if p.problem_id == row["problem_id"])
        prompt_ids, ids = _encode(tok, prompt_fn(problem)), r.completion_ids
        b = _boundary(tok, ids, r.completion, step.end)
        end = [eos] if _ends(r, step) else []  # EOS only after a finished sample's last step
        assert _unpadded(batch, len(rows) + i) == prompt_ids + ids[:b] + end  # and no re-encoded token
        rejected_mask = batch["completion_mask"][len(rows) + i][batch["attention_mask"][len(rows) + i].bool()]
        a = len(features[i]["prompt_ids"]) - len(prompt_ids)
        assert rejected_mask.tolist() == [0] * (len(prompt_ids) + a) + [1] * (b - a + len(end))
        chosen = _unpadded(batch, i)
        assert chosen[-1] == eos and any(chosen[:-1] == prompt_ids + c.completion_ids for c in rollouts)


def test_awr_trainer_feeds_the_prompt_ids_plus_the_generated_ids(setup, tmp_path):
    from negrl.trainers.awr import AWRConfig, AWRTrainer

    tok, prompt_fn, problems, rollouts, verdicts, labels = setup
    rows = awr_rows(problems, rollouts, verdicts, labels, AWRRowConfig(), prompt_fn, tokenizer=tok)
    args = AWRConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=1, disable_tqdm=True)
    trainer = AWRTrainer(model=_tiny_llama(tok), args=args, train_dataset=rows, processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    for i, row in enumerate(rows):
        problem = next(p for p in problems if p.problem_id == row["problem_id"])
        prompt_ids = _encode(tok, prompt_fn(problem))
        source = _source(row, rollouts)
        expected = prompt_ids + source.completion_ids[: len(row["completion_ids"])]
        assert _unpadded(batch, i) == expected + ([tok.eos_token_id] if row["correct"] else [])
        if not row["correct"]:  # the pit tokens (those the cut keeps) carry the pit's advantage, -1
            _, step = _pit(source.rollout_id, rollouts, labels)
            a = _boundary(tok, source.completion_ids, source.completion, step.start)
            weights = batch["token_weights"][i][len(prompt_ids):len(expected)].tolist()
            assert weights[a:] == [-1.0] * (len(row["completion_ids"]) - a) and -1.0 not in weights[:a]


def test_char_tokenizer_rows_and_features_are_those_of_the_text_rows(char_tokenizer):
    """Character tokenizer: the id-built rows are the text rows, digit for digit (the demo cannot move)."""
    from negrl.trainers.awr import tokenize_awr_rows
    from negrl.trainers.step_dpo import tokenize_pairs

    tok = char_tokenizer
    problems, rollouts, verdicts, labels = _records(tok, prefix_value=0.5)
    for fmt in ("paper", "shared_prefix"):
        cfg = PairConfig(format=fmt)
        text_rows = step_dpo_pairs(problems, rollouts, verdicts, labels, cfg)
        id_rows = step_dpo_pairs(problems, rollouts, verdicts, labels, cfg, tokenizer=tok)
        assert id_rows.remove_columns(["prompt_token_ids", "chosen_token_ids", "rejected_token_ids"]).to_list() == \
            text_rows.to_list()
        cols = ["prompt_ids", "chosen_ids", "rejected_ids"]
        assert tokenize_pairs(id_rows, tok).select_columns(cols).to_list() == \
            tokenize_pairs(text_rows, tok).select_columns(cols).to_list()
    outcome_text = outcome_dpo_pairs(problems, rollouts, verdicts)
    outcome_ids = outcome_dpo_pairs(problems, rollouts, verdicts, tokenizer=tok)
    assert tokenize_pairs(outcome_ids, tok).select_columns(cols).to_list() == \
        tokenize_pairs(outcome_text, tok).select_columns(cols).to_list()
    text_awr = awr_rows(problems, rollouts, verdicts, labels)
    id_awr = awr_rows(problems, rollouts, verdicts, labels, tokenizer=tok)
    assert id_awr.remove_columns(["completion_ids"]).to_list() == text_awr.to_list()
    cols = ["input_ids", "completion_mask", "token_weights"]
    assert tokenize_awr_rows(id_awr, tok).select_columns(cols).to_list() == \
        tokenize_awr_rows(text_awr, tok).select_columns(cols).to_list()


def test_rollouts_without_generated_ids_keep_the_text_rows(bpe_tokenizer):
    """Old stages (no ``completion_ids``) or ids of another tokenizer: the text rows, with ``None`` id columns."""
    from negrl.trainers.step_dpo import tokenize_pairs

    tok = bpe_tokenizer
    problems, rollouts, verdicts, labels = _records(tok, lambda i, _: None if i % 2 else [0, 1, 2])  # [0, 1, 2]: no
    text_rows = step_dpo_pairs(problems, rollouts, verdicts, labels)  # decode to the text (another tokenizer's ids)
    id_rows = step_dpo_pairs(problems, rollouts, verdicts, labels, tokenizer=tok)
    assert all(row[c] is None for row in id_rows for c in ("prompt_token_ids", "chosen_token_ids",
                                                           "rejected_token_ids"))
    cols = ["prompt_ids", "chosen_ids", "rejected_ids"]
    assert tokenize_pairs(id_rows, tok).select_columns(cols).to_list() == \
        tokenize_pairs(text_rows, tok).select_columns(cols).to_list()
    awr = awr_rows(problems, rollouts, verdicts, labels, tokenizer=tok)
    assert awr["completion"] == awr_rows(problems, rollouts, verdicts, labels)["completion"]
    assert all(ids is None for ids in awr["completion_ids"])


def test_a_pit_inside_one_generated_token_gives_no_row(bpe_tokenizer):
    """A critical step with no token boundary past its start has no token to reject: dropped, with its reason."""
    tok = bpe_tokenizer
    text = SAMPLES[4][2]
    ids = _encode(tok, text)
    # a one-character "step" made of the newline that the generated "\n   " token swallows
    cut = len("def f(x):")
    steps = [Step(text[:cut], 0, cut), Step(text[cut : cut + 1], cut, cut + 1),
             Step(text[cut + 1 :], cut + 1, len(text))]
    lab = StepLabels(rollout_id="code#1", steps=steps, values=[1.0, 0.0, 0.0], labels=[True, False, False],
                     first_error=1, source="mc", prefix_value=1.0)
    rollouts = [Rollout(rollout_id="code#1", problem_id="code", completion=text, completion_ids=ids),
                Rollout(rollout_id="code#0", problem_id="code", completion=SAMPLES[3][2], sample_index=1,
                        completion_ids=_encode(tok, SAMPLES[3][2]))]
    verdicts = [Verdict(rollout_id="code#1", correct=False), Verdict(rollout_id="code#0", correct=True)]
    stats = BuildStats()
    assert len(step_dpo_pairs([CODE], rollouts, verdicts, [lab], stats=stats, tokenizer=tok)) == 0
    assert stats.dropped == {"pit_inside_token": 1}
    awr_stats = BuildStats()
    rows = awr_rows([CODE], rollouts, verdicts, [lab], stats=awr_stats, tokenizer=tok)
    assert rows["correct"] == [True] and awr_stats.dropped == {"pit_inside_token": 1}


def test_rows_from_real_generation_hold_the_sampled_ids(bpe_tokenizer):
    """Rollouts sampled by a (random) model on the BPE tokenizer: every row's sides are slices of the sampled ids."""
    from negrl.generation import GenerationConfig, generate_rollouts

    tok = bpe_tokenizer
    problems = [MATH, CODE]
    gen = GenerationConfig(num_samples=6, max_new_tokens=24, temperature=1.0, seed=0, show_progress=False)
    rollouts = generate_rollouts(problems, _tiny_llama(tok), tok, gen)
    assert all(r.completion_ids and len(r.completion) > 12 for r in rollouts)
    verdicts = [Verdict(rollout_id=r.rollout_id, correct=i % 3 == 0) for i, r in enumerate(rollouts)]
    labels = []
    for r, v in zip(rollouts, verdicts):  # steps of 6 characters (random text has few lines); pit at step 1
        text = r.completion
        steps = [Step(text[j : j + 6], j, min(j + 6, len(text))) for j in range(0, len(text), 6)]
        labels.append(StepLabels(rollout_id=r.rollout_id, steps=steps, values=[1.0] + [0.0] * (len(steps) - 1),
                                 labels=[j < 1 for j in range(len(steps))], first_error=None if v.correct else 1,
                                 source="mc", prefix_value=1.0))
    by_id = {r.rollout_id: r for r in rollouts}
    pit_of = {lab.rollout_id: lab.steps[1] for lab in labels}
    prompt_ids = {p.problem_id: _encode(tok, p.prompt) for p in problems}
    conts = {}  # random samples share no prefix: a continuation (as a Monte-Carlo stage keeps) for each wrong one
    for r in rollouts:
        head = r.completion_ids[: _boundary(tok, r.completion_ids, r.completion, pit_of[r.rollout_id].start)]
        conts[(r.problem_id, tok.decode(head))] = ["Answer: 9"]
    for fmt in ("paper", "shared_prefix"):
        stats = BuildStats()
        cfg = PairConfig(format=fmt, negatives_per_problem=None, truncated_chosen="eos")  # samples hit the limit
        rows = step_dpo_pairs(problems, rollouts, verdicts, labels, cfg, continuations=conts, stats=stats,
                              tokenizer=tok)
        assert len(rows) > 0, stats.as_dict()
        for row in rows:
            r = by_id[row["rejected_id"]]
            p_ids = prompt_ids[r.problem_id]
            full_prompt = row["prompt_token_ids"] or p_ids
            assert full_prompt[: len(p_ids)] == p_ids
            b = _boundary(tok, r.completion_ids, r.completion, pit_of[r.rollout_id].end)
            assert full_prompt[len(p_ids) :] + row["rejected_token_ids"] == r.completion_ids[:b]
        # the text rows would have trained other tokens: sampled ids are rarely the canonical encoding
        assert any(_encode(tok, row["rejected"]) != row["rejected_token_ids"] for row in rows)
    awr = awr_rows(problems, rollouts, verdicts, labels, tokenizer=tok)
    assert len(awr) > 0
    for row in awr:
        assert any(r.completion_ids[: len(row["completion_ids"])] == row["completion_ids"] for r in rollouts)


def test_bcpg_samples_score_and_train_the_generated_ids(setup, char_tokenizer):
    """BCPG-NSA: behaviour log-probs and trainer rows on prompt ids + the generated ids (+ EOS when finished)."""
    from negrl.builders.bcpg import BCPGDataConfig, bcpg_dataset, build_bcpg_samples, mine_correct_steps, sample_tokens

    tok, _, problems, rollouts, verdicts, labels = setup
    model = _tiny_llama(tok)
    samples = build_bcpg_samples(problems, rollouts, verdicts, model, tok, BCPGDataConfig(max_length=256))
    assert len(samples) == len(SAMPLES)
    by_id = {r.rollout_id: r for r in rollouts}
    mined = mine_correct_steps(samples, labels, "mc")
    rows = bcpg_dataset(mined, tok, beta=0.5, max_length=256)
    for s, row in zip(mined, rows):
        expected = _encode(tok, s.prompt) + by_id[s.rollout_id].completion_ids + [tok.eos_token_id]
        assert sample_tokens(s, tok, 256)["input_ids"] == expected == row["input_ids"]
    text_samples = build_bcpg_samples(problems, [dataclasses.replace(r, completion_ids=None) for r in rollouts],
                                      verdicts, model, tok, BCPGDataConfig(max_length=256))
    same = [a.ref_logp == b.ref_logp for a, b in zip(samples, text_samples)]
    if tok is char_tokenizer:  # ids = the text's encoding: nothing moves
        assert all(same)
        text_rows = bcpg_dataset(mine_correct_steps(text_samples, labels, "mc"), tok, beta=0.5, max_length=256)
        assert text_rows.to_list() == rows.to_list()
    else:  # the text path scored other tokens than those generated
        assert not all(same)


def test_rft_rows_carry_the_generated_ids(setup):
    """RFT rows name each correct sample's generated ids (``tokenize_weighted(..., completion_ids=)`` trains them)."""
    from negrl.builders import rft_rows
    from negrl.completion_tokens import tokenize_weighted

    tok, prompt_fn, problems, rollouts, verdicts, _ = setup
    rows = rft_rows(problems, rollouts, verdicts, prompt_fn=prompt_fn, tokenizer=tok)
    assert rows.remove_columns(["completion_ids"]).to_list() == rft_rows(problems, rollouts, verdicts,
                                                                         prompt_fn=prompt_fn).to_list()
    by_text = {r.completion: r.completion_ids for r in rollouts}
    assert len(rows) == 2 and all(row["completion_ids"] == by_text[row["completion"]] for row in rows)
    for row in rows:
        enc = tokenize_weighted(tok, row["prompt"], row["completion"], completion_ids=row["completion_ids"])
        assert enc["input_ids"] == _encode(tok, row["prompt"]) + row["completion_ids"] + [tok.eos_token_id]
