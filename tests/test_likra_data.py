"""Likra data: ARC loader (real files), choice verifier, near-miss arithmetic choices, negative sources, configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from negrl.likra.negatives import NegativeSpec, choice_pairs
from negrl.records import Problem


def _mc(pid: str, gold: str = "B") -> Problem:
    return Problem(problem_id=pid, domain="choice", prompt=f"Question: {pid}?\nAnswer:", answer=gold,
                   choices=[f"{pid}-a", f"{pid}-b", f"{pid}-c"], choice_labels=["A", "B", "C"])


# ---------------------------------------------------------------------------------------------------------------
# ARC
# ---------------------------------------------------------------------------------------------------------------


def test_arc_loader_real_files(shared_data):
    from negrl.benchmarks.arc import fewshot_context, load_arc
    from negrl.problems import load_problems

    easy = load_arc("arc_easy", "test", root=shared_data)
    assert len(easy) == 2376
    chal = load_problems("arc_challenge", split="train", path=shared_data)
    assert len(chal) == 1119
    digit = [p for p in chal if p.answer and p.answer.isdigit()]
    assert digit, "ARC-Challenge train has digit answer keys"
    for p in digit + easy[:50]:
        assert p.domain == "choice" and p.answer in p.choice_labels and len(p.choices) == len(p.choice_labels)
        assert p.prompt.startswith("Question: ") and p.prompt.endswith("\nAnswer:")
    assert easy[0].problem_id == "arc_easy:Mercury_417466" and easy[0].answer == "A"
    ctx = fewshot_context(chal, 3, seed=0)
    assert ctx.count("Question: ") == 3 and ctx.endswith("\n\n")
    assert fewshot_context(chal, 0) == ""


def test_arc_loader_errors(tmp_path):
    from negrl.benchmarks.arc import load_arc

    (tmp_path / "arc").mkdir()
    row = {"id": "x", "question": {"stem": "s", "choices": [{"text": "t", "label": "A"}]}, "answerKey": "E"}
    (tmp_path / "arc" / "ARC-Easy-Test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"ARC-Easy-Test.jsonl:1: answerKey 'E'"):
        load_arc("arc_easy", root=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_arc("arc_challenge", root=tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Choice verifier
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "extracted", "correct"),
    [
        ("The answer is (B).", "B", True),
        ("Answer: C", "C", False),
        ("B. because", "B", True),
        ("I think q-b is right", "B", True),
        ("no idea", None, False),
    ],
)
def test_choice_verifier(completion, extracted, correct):
    from negrl.verifiers import verify

    v = verify(_mc("q"), completion, rollout_id="r")
    assert (v.extracted, v.correct, v.verifier, v.rollout_id) == (extracted, correct, "choice", "r")


def test_choice_verifier_no_gold_is_none():
    from negrl.verifiers import verify

    p = _mc("q")
    p.answer = None
    assert verify(p, "Answer: B").correct is None


# ---------------------------------------------------------------------------------------------------------------
# Near-miss arithmetic choices
# ---------------------------------------------------------------------------------------------------------------


def test_arithmetic_choice_near_misses():
    from negrl.tasks import arithmetic, get_task

    train, test = get_task("arithmetic_choice", min_steps=2, max_steps=3).make_splits(40, 20, seed=0)
    assert not {p.problem_id for p in train} & {p.problem_id for p in test}
    for p in train + test:
        assert p.domain == "choice" and len(set(p.choices)) == 4
        gold = p.choices[p.choice_labels.index(p.answer)]
        assert gold == p.solution
        wrong = [c for c in p.choices if c != gold]
        base = Problem(problem_id="x", domain="arithmetic", prompt=p.prompt, answer=str(p.meta["values"][-1]))
        assert arithmetic.verify(base, gold).correct is True
        # each distractor is a well-formed solution whose final answer is wrong or whose chain is not the problem's
        assert all(c.split("\n")[-1].startswith("Answer: ") for c in wrong)
        assert set(p.meta["kinds"]) >= {"gold", "off_by_one", "wrong_operator"}


# ---------------------------------------------------------------------------------------------------------------
# Negative sources
# ---------------------------------------------------------------------------------------------------------------


def test_negative_sources_and_picks():
    probs = [_mc(f"q{i}") for i in range(6)]
    (pp, pa), (np_, na) = choice_pairs(probs, NegativeSpec("own", "first"), seed=0)
    assert len(pa) == len(na) == 6 and pp == np_
    assert all(a.endswith("-b") for a in pa) and all(a.endswith("-a") for a in na)
    assert all(a.startswith(" ") for a in pa + na)
    # hardest = the wrong option the base scores highest, easiest = lowest
    scores = [[0.0, 9.0, -1.0]] * 6
    _, (_, hard) = choice_pairs(probs, NegativeSpec("own", "hardest"), base_scores=scores)
    _, (_, easy) = choice_pairs(probs, NegativeSpec("own", "easiest"), base_scores=scores)
    assert all(a.endswith("-a") for a in hard) and all(a.endswith("-c") for a in easy)
    with pytest.raises(ValueError, match="base_scores"):
        choice_pairs(probs, NegativeSpec("own", "hardest"))
    # random own: always a wrong option of the same question
    (pp, _), (_, rnd) = choice_pairs(probs, NegativeSpec("own", "random"), seed=3)
    for prompt, a in zip(pp, rnd):
        qid = prompt.split(":")[1].split("?")[0].strip()
        assert a.strip().startswith(qid) and not a.endswith("-b")
    # other: a wrong option of a different question
    (pp, _), (_, other) = choice_pairs(probs, NegativeSpec("other"), seed=1)
    for prompt, a in zip(pp, other):
        qid = prompt.split(":")[1].split("?")[0].strip()
        assert not a.strip().startswith(qid + "-") and not a.endswith("-b")
    _, (_, unrel) = choice_pairs(probs, NegativeSpec("unrelated"), unrelated_texts=["lorem ipsum"])
    assert unrel == [" lorem ipsum"] * 6
    # contamination 1.0: every negative is the gold answer
    (_, pa), (_, cont) = choice_pairs(probs, NegativeSpec("own", "random", contamination=1.0))
    assert cont == pa
    with pytest.raises(ValueError):
        NegativeSpec("nowhere")


# ---------------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------------



def test_near_miss_is_the_wrong_option_the_base_scores_highest_after_length_normalisation():
    """Hand numbers: base log-likelihoods -2, -3, -6 of options of 1, 2, 6 characters (gold = the first).
    Raw, the near miss is option 2 (-3 > -6); per character (-2, -1.5, -1.0) it is option 3."""
    import torch

    from negrl.likra.scoring import BASE, ChoiceLogprobs

    cl = ChoiceLogprobs(logps={BASE: torch.tensor([-2.0, -3.0, -6.0])}, byte_lengths=torch.tensor([2.0, 3.0, 7.0]),
                        group_sizes=[3], gold=[0], char_lengths=torch.tensor([1.0, 2.0, 6.0]))
    assert cl.per_question(BASE, None) == [[-2.0, -3.0, -6.0]]
    assert cl.per_question(BASE, "chars") == [[-2.0, -1.5, -1.0]]
    assert cl.per_question(BASE, "bytes")[0] == pytest.approx([-1.0, -1.0, -6.0 / 7.0])
    with pytest.raises(ValueError, match="no scores of head 'pos'"):
        cl.per_question("pos")
    prob = Problem(problem_id="q", domain="choice", prompt="Question: q?\nAnswer:", answer="A",
                   choices=["x", "yy", "zzzzzz"], choice_labels=["A", "B", "C"])
    _, (_, raw) = choice_pairs([prob], NegativeSpec("own", "hardest"), base_scores=cl.per_question(BASE, None))
    _, (_, norm) = choice_pairs([prob], NegativeSpec("own", "hardest"), base_scores=cl.per_question(BASE, "chars"))
    assert raw == [" yy"] and norm == [" zzzzzz"]


def test_random_and_near_miss_arms_share_the_positive_pairs():
    """The positive pairs (and their order) depend on the seed only, not on the negative pick: one positive head
    serves every negative arm of a seed."""
    probs = [_mc(f"q{i}") for i in range(7)]
    scores = [[0.0, 1.0, 2.0]] * 7
    pos_r, neg_r = choice_pairs(probs, NegativeSpec("own", "random"), seed=5)
    pos_h, neg_h = choice_pairs(probs, NegativeSpec("own", "hardest"), seed=5, base_scores=scores)
    assert pos_r == pos_h and neg_r[0] == neg_h[0]
    assert all(a.endswith("-c") for a in neg_h[1])

def test_likra_configs_parse():
    from negrl.experiments.likra_curve import load_experiment_config

    files = sorted((Path(__file__).resolve().parents[1] / "recipes" / "configs" / "likra").glob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        if f.name.startswith("rerank"):
            import yaml

            from negrl.experiments.likra_rerank import RerankConfig

            assert RerankConfig.from_dict(yaml.safe_load(f.read_text()), str(f)).heads.r == 8
            continue
        if f.name.startswith("arc_seeds"):
            from negrl.experiments.likra_seeds import load_seeds_config

            assert load_seeds_config(f).heads.r == 8
            continue
        cfg = load_experiment_config(f)
        assert cfg.heads.target_modules == ["up_proj", "down_proj", "gate_proj"]
        assert isinstance(cfg.negative, NegativeSpec)
    files = [f for f in files if not f.name.startswith(("rerank", "arc_seeds"))]
    cfg = load_experiment_config(files[0], ["heads.learning_rate=1e-4", "negative.pick=first", "n_test=10"])
    assert (cfg.heads.learning_rate, cfg.negative.pick, cfg.n_test) == (1e-4, "first", 10)
    with pytest.raises(ValueError, match="unknown key"):
        load_experiment_config(files[0], ["bogus=1"])
