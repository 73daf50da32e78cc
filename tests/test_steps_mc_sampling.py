"""Monte-Carlo sampling economies: first-success stopping, certificates, binary pit search, token-id prefixes.

Scripted worlds make "same values" checkable exactly: the j-th continuation ever drawn from a prefix is fixed by the
script, so two sampling schedules that draw the same continuations must give the same values.
"""

from __future__ import annotations

import math
import random

import pytest

from negrl.builders import PairConfig, step_dpo_pairs
from negrl.records import Problem, Rollout
from negrl.steps.monte_carlo import MonteCarloConfig, MonteCarloStats, label_monte_carlo, mc_continuations, token_cut
from negrl.verifiers import verify


ANSWER = 7
PROBLEM = Problem(problem_id="chain", domain="arithmetic", prompt="Q: chain\n", answer=str(ANSWER))
RIGHT, WRONG = f"Answer: {ANSWER}", f"Answer: {ANSWER + 1}"


class Draws:
    """continue_fn whose n-th draw from a prefix (counted over all calls) is ``script[prefix][n]``."""

    def __init__(self, script: dict[str, list[str]], problem: Problem = PROBLEM):
        self.script, self.prompt = script, problem.prompt
        self.drawn: dict[str, int] = {}
        self.n = self.calls = 0

    def __call__(self, prompts, seed):
        out = []
        for p in prompts:
            prefix = p[len(self.prompt):]
            j = self.drawn.get(prefix, 0)
            self.drawn[prefix] = j + 1
            out.append(self.script[prefix][j])
        self.n += len(prompts)
        self.calls += 1
        return out


def _chain(n_lines: int, tag: str) -> str:
    return "".join(f"{tag}{i}\n" for i in range(n_lines)) + WRONG


def _world(rng: random.Random, k: int, n_rollouts: int = 4, consistent: bool = False):
    """Wrong rollouts over shared step prefixes, correct rollouts, and a script of K draws per prefix.

    ``consistent``: a prefix that a correct rollout starts with has at least one correct draw among its K (so a
    certificate can never contradict what sampling all K would find).
    """
    rollouts = []
    for i in range(n_rollouts):
        lines = [f"s{rng.randint(0, 1)}" for _ in range(rng.randint(1, 5))]  # few distinct lines: shared prefixes
        rollouts.append(Rollout(rollout_id=f"w{i}", problem_id=PROBLEM.problem_id,
                                completion="".join(f"{x}\n" for x in lines) + WRONG))  # fmt: skip
    for i in range(rng.randint(0, 2)):
        lines = [f"s{rng.randint(0, 1)}" for _ in range(rng.randint(1, 3))]
        rollouts.append(Rollout(rollout_id=f"c{i}", problem_id=PROBLEM.problem_id,
                                completion="".join(f"{x}\n" for x in lines) + RIGHT))  # fmt: skip
    verdicts = [verify(PROBLEM, r.completion, r.rollout_id) for r in rollouts]
    correct = [r.completion for r, v in zip(rollouts, verdicts) if v.correct]
    script: dict[str, list[str]] = {}
    for r in rollouts:
        text = r.completion
        cuts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        for c in cuts:
            prefix = text[:c]
            if prefix in script:
                continue
            q = rng.choice([0.0, 0.0, 0.2, 0.6, 1.0])
            draws = [RIGHT if rng.random() < q else WRONG for _ in range(k)]
            if consistent and any(t.startswith(prefix) for t in correct) and RIGHT not in draws:
                draws[rng.randrange(k)] = RIGHT
            script[prefix] = draws
    if consistent:  # a prefix that can be completed correctly makes every shorter prefix completable too
        for prefix in sorted(script, key=len, reverse=True):
            if RIGHT in script[prefix]:
                for shorter in script:
                    if prefix.startswith(shorter) and RIGHT not in script[shorter]:
                        script[shorter][rng.randrange(k)] = RIGHT
    return rollouts, verdicts, script


def _label(rollouts, verdicts, script, **cfg):
    fake = Draws(script)
    stats = MonteCarloStats()
    labs = label_monte_carlo([PROBLEM], rollouts, verdicts, config=MonteCarloConfig(show_progress=False, **cfg),
                             continue_fn=fake, stats=stats)  # fmt: skip
    return labs, fake, stats


def _values(labs):
    return [(lab.rollout_id, lab.values, lab.prefix_value, lab.first_error, lab.labels) for lab in labs]


@pytest.mark.parametrize("early_stop", [False, True])
def test_first_success_stopping_gives_the_best_of_k_values_of_all_k(early_stop):
    rng = random.Random(0)
    saved = 0
    for _ in range(60):
        k = rng.randint(1, 6)
        rollouts, verdicts, script = _world(rng, k)
        base = {"k": k, "early_stop": early_stop, "reuse_rollouts": False}
        all_k, fake_all, _ = _label(rollouts, verdicts, script, stop_at_success=False, **base)
        first, fake_first, _ = _label(rollouts, verdicts, script, stop_at_success=True, **base)
        assert _values(first) == _values(all_k)
        assert fake_first.n <= fake_all.n
        saved += fake_all.n - fake_first.n
    assert saved > 0


def test_first_success_stopping_is_refused_for_the_mean_estimator():
    assert MonteCarloConfig(estimator="mean").stop_at_success is False  # default: on only where exact
    with pytest.raises(ValueError, match="best_of_k"):
        MonteCarloConfig(estimator="mean", stop_at_success=True)
    with pytest.raises(ValueError, match="best_of_k"):
        MonteCarloConfig(estimator="bok_from_mean", reuse_rollouts=True)


def test_certificates_never_change_a_value_and_save_samples():
    rng = random.Random(1)
    certified = 0
    for _ in range(60):
        k = rng.randint(1, 5)
        rollouts, verdicts, script = _world(rng, k, consistent=True)
        plain, fake_plain, _ = _label(rollouts, verdicts, script, k=k, reuse_rollouts=False)
        reused, fake_reused, stats = _label(rollouts, verdicts, script, k=k, reuse_rollouts=True)
        assert _values(reused) == _values(plain)
        assert fake_reused.n <= fake_plain.n
        certified += stats.certified
    assert certified > 0


def test_a_correct_rollout_certifies_the_prefixes_it_starts_with():
    wrong = Rollout(rollout_id="w", problem_id=PROBLEM.problem_id, completion="a\nb\n" + WRONG)
    right = Rollout(rollout_id="c", problem_id=PROBLEM.problem_id, completion="a\nx\n" + RIGHT)
    verdicts = [verify(PROBLEM, r.completion, r.rollout_id) for r in (wrong, right)]
    script = {"": [WRONG] * 3, "a\n": [WRONG] * 3, "a\nb\n": [WRONG] * 3}  # sampling alone would find no success
    (lab,), fake, stats = _label([wrong, right], verdicts, script, k=3)
    assert lab.prefix_value == 1.0 and lab.values[0] == 1.0  # "" and "a\n" are certified by the correct rollout
    assert lab.values[1] == 0.0 and lab.first_error == 1
    assert fake.drawn == {"a\nb\n": 3} and stats.certified == 2
    assert lab.continuations == {"-1": "a\nx\n" + RIGHT, "0": "x\n" + RIGHT}


def _monotone_world(n_lines: int, pit: int, k: int = 3):
    """One wrong rollout of ``n_lines`` + an answer line; prefixes before the pit recoverable, from it on not."""
    text = _chain(n_lines, "l")
    cuts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    # value of step i = value of the prefix after line i = cut i + 1; it is 0 from the pit on
    script = {text[:c]: ([WRONG] * (k - 1) + [RIGHT]) if i <= pit else [WRONG] * k for i, c in enumerate(cuts)}
    rollout = Rollout(rollout_id="r", problem_id=PROBLEM.problem_id, completion=text)
    return [rollout], [verify(PROBLEM, text, "r")], script


@pytest.mark.parametrize("n_lines", [1, 2, 5, 11])
def test_binary_search_finds_the_exact_pit_when_values_never_recover(n_lines):
    for pit in range(n_lines + 1):
        rollouts, verdicts, script = _monotone_world(n_lines, pit)
        (lin,), _, s_lin = _label(rollouts, verdicts, script, k=3)
        (bis,), _, s_bis = _label(rollouts, verdicts, script, k=3, search="binary")
        assert lin.first_error == pit and bis.first_error == pit
        assert bis.labels == lin.labels
        # the bare prompt + a bisection of the n_lines unknown step values; the linear scan stops after the pit
        assert s_bis.prefixes <= 1 + math.ceil(math.log2(n_lines + 1))
        assert s_lin.prefixes == 1 + min(pit + 1, n_lines)
    if n_lines == 11:  # a pit at the last step: 12 prefixes by the linear scan, the prompt + 3 bisections
        assert (s_lin.prefixes, s_bis.prefixes) == (12, 4)


def test_binary_search_misses_a_pit_that_the_policy_recovers_from():
    """Values 0,1,1,1,1 then the wrong answer: the first zero is step 0, bisection only sees ones and lands late."""
    text = _chain(5, "l")
    cuts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    script = {text[:c]: [RIGHT] for c in cuts}
    script[text[: cuts[1]]] = [WRONG]  # step 0's prefix is hopeless, later ones recover
    rollouts = [Rollout(rollout_id="r", problem_id=PROBLEM.problem_id, completion=text)]
    verdicts = [verify(PROBLEM, text, "r")]
    (lin,), _, _ = _label(rollouts, verdicts, script, k=1, early_stop=False)
    (bis,), _, _ = _label(rollouts, verdicts, script, k=1, search="binary")
    assert lin.first_error == 0 and bis.first_error == 5
    assert None in bis.values  # unvisited steps are not given made-up values


def test_resume_with_the_default_sampling_is_identical(tmp_path):
    rng = random.Random(3)
    rollouts, verdicts, script = _world(rng, 4, n_rollouts=12)
    problems = []
    # 6 problems that share the script: rename the problem per pair of rollouts
    for i, r in enumerate(rollouts):
        pid = f"p{i // 2}"
        problems.append(Problem(problem_id=pid, domain="arithmetic", prompt=PROBLEM.prompt, answer=str(ANSWER)))
        rollouts[i] = Rollout(rollout_id=r.rollout_id, problem_id=pid, completion=r.completion)
    problems = list({p.problem_id: p for p in problems}.values())
    verdicts = [verify(problems[0], r.completion, r.rollout_id) for r in rollouts]
    cfg = MonteCarloConfig(k=4, unit_size=2, show_progress=False)

    full = label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=PerUnit(script), out_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=PerUnit(script, kill_after=3),
                          out_dir=tmp_path / "b")  # fmt: skip
    assert not (tmp_path / "b" / "manifest.json").exists()
    resumed = label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=PerUnit(script),
                                out_dir=tmp_path / "b")  # fmt: skip
    assert [lab.to_row() for lab in resumed] == [lab.to_row() for lab in full]
    assert any(lab.first_error is not None for lab in full)


class PerUnit:
    """Deterministic in (prompt, seed, copy index within the call): what a seeded generator guarantees."""

    def __init__(self, script, kill_after=None):
        self.script, self.kill_after, self.calls = script, kill_after, 0

    def __call__(self, prompts, seed):
        self.calls += 1
        if self.kill_after is not None and self.calls > self.kill_after:
            raise KeyboardInterrupt("simulated kill")
        seen: dict[str, int] = {}
        out = []
        for p in prompts:
            prefix = p[len(PROBLEM.prompt):]
            j = seen[prefix] = seen.get(prefix, -1) + 1
            draws = self.script[prefix]
            out.append(draws[(j + seed) % len(draws)])
        return out


def test_found_continuations_become_shared_prefix_chosen_sides():
    """A pit after step 0 with no correct rollout sharing step 0: only the Monte-Carlo continuation can be chosen."""
    wrong = Rollout(rollout_id="w", problem_id=PROBLEM.problem_id, completion="a\nb\n" + WRONG)
    other = Rollout(rollout_id="c", problem_id=PROBLEM.problem_id, completion="z\n" + RIGHT)
    verdicts = [verify(PROBLEM, r.completion, r.rollout_id) for r in (wrong, other)]
    script = {"": [RIGHT], "a\n": [WRONG, "c\n" + RIGHT], "a\nb\n": [WRONG, WRONG]}
    labs, _, _ = _label([wrong, other], verdicts, script, k=2)
    assert labs[0].first_error == 1 and labs[0].continuations["0"] == "c\n" + RIGHT
    cfg = PairConfig(format="shared_prefix")
    without = step_dpo_pairs([PROBLEM], [wrong, other], verdicts, labs, cfg)
    assert len(without) == 0
    pool = mc_continuations(labs, [wrong, other])
    assert pool[(PROBLEM.problem_id, "a\n")] == ["c\n" + RIGHT]
    pairs = step_dpo_pairs([PROBLEM], [wrong, other], verdicts, labs, cfg, continuations=pool)
    assert len(pairs) == 1 and pairs[0]["prompt"] == PROBLEM.prompt + "a\n"
    assert pairs[0]["chosen"] == "c\n" + RIGHT and pairs[0]["rejected"] == "b\n"


def test_rollouts_with_token_ids_are_continued_from_their_ids(trained_policy_dir, arithmetic_task):
    from negrl.generation import GenerationConfig, encode_prompts, generate_rollouts
    from negrl.modeling import load_policy
    from negrl.verifiers import verify_rollouts

    model, tok = load_policy(str(trained_policy_dir), device="cpu")
    problems = arithmetic_task.generate_problems(6, seed=3)
    rollouts = generate_rollouts(problems, model, tok, GenerationConfig(num_samples=2, max_new_tokens=32, seed=1,
                                                                       show_progress=False))  # fmt: skip
    assert all(tok.decode(r.completion_ids) == r.completion for r in rollouts)
    verdicts = verify_rollouts(problems, rollouts)
    seen = []

    def record(prompts, seed):
        seen.extend(prompts)
        return ["Answer: 0"] * len(prompts)

    label_monte_carlo(problems, rollouts, verdicts, tokenizer=tok, continue_fn=record,
                      config=MonteCarloConfig(k=1, reuse_rollouts=False, show_progress=False))  # fmt: skip
    assert seen and all(isinstance(p, list) for p in seen)
    by_prompt = {tuple(encode_prompts([p.prompt], tok)[0]): p for p in problems}
    for ids in seen:  # every prompt is the problem's prompt ids + a prefix of some rollout's generated ids
        n = next(n for n in range(len(ids) + 1) if tuple(ids[:n]) in by_prompt)
        tail = ids[n:]
        pid = by_prompt[tuple(ids[:n])].problem_id
        assert any(r.completion_ids[: len(tail)] == tail for r in rollouts if r.problem_id == pid)


def test_token_cut_stays_inside_the_step_when_a_token_straddles_it():
    tokenizers = pytest.importorskip("tokenizers")
    from transformers import PreTrainedTokenizerFast

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(["1+2=3\n\n3*4=12\n\nAnswer: 12"] * 50, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe)
    text = "1+2=3\n\n3*4=12\n\nAnswer: 12"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    ends = [0, len("1+2=3\n\n"), len("1+2=3\n\n3*4=12\n\n"), len(text)]
    for e in ends:
        n = token_cut(tok, ids, text, e)
        prefix = tok.decode(ids[:n])
        assert text.startswith(prefix) and len(prefix) <= e
        # nothing longer that still fits: the next token boundary is past the step end
        assert n == len(ids) or len(tok.decode(ids[: n + 1])) > e
    mid = len("1+2=3\n")  # inside a merged "\n\n" token, if BPE merged it
    n = token_cut(tok, ids, text, mid)
    assert len(tok.decode(ids[:n])) <= mid
