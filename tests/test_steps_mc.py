"""Monte-Carlo step values with a scripted fake generator: exact values, pits, dedup, resume, a real model."""

from __future__ import annotations

import hashlib

import pytest

from negrl.records import Problem, Rollout, StepLabels
from negrl.steps.monte_carlo import MonteCarloConfig, estimate_value, find_pit, label_monte_carlo, plan_units
from negrl.verifiers import verify


def _problem(a: int = 3, b: int = 4, f: int = 2) -> Problem:
    # (a+b)*f: gold "a+b=s\ns*f=p\nAnswer: p"
    s, p = a + b, (a + b) * f
    return Problem(
        problem_id=f"arith:({a}+{b})*{f}", domain="arithmetic", prompt=f"Q: ({a}+{b})*{f}\n", answer=str(p),
        meta={"operands": [a, b, f], "ops": ["+", "*"], "values": [s, p]},
    )


class Scripted:
    """continue_fn: the j-th copy of a prefix text gets ``script[text][j % len]``; records every call."""

    def __init__(self, script: dict[str, list[str]]):
        self.script = script
        self.calls: list[list[str]] = []

    def __call__(self, texts, seed):
        self.calls.append(list(texts))
        seen: dict[str, int] = {}
        out = []
        for t in texts:
            j = seen.get(t, 0)
            seen[t] = j + 1
            out.append(self.script[t][j % len(self.script[t])])
        return out


P = _problem()
WRONG = "3+4=7\n7*2=15\nAnswer: 15"  # line 2 is the first error
SCRIPT = {
    P.prompt: ["3+4=7\n7*2=14\nAnswer: 14", "3+4=8\n8*2=16\nAnswer: 16"],  # 1 of 2 succeed
    P.prompt + "3+4=7\n": ["7*2=14\nAnswer: 14", "7*2=15\nAnswer: 15"],  # 1 of 2
    P.prompt + "3+4=7\n7*2=15\n": ["Answer: 15", "Answer: 16"],  # 0 of 2
}


# The sampling of the first version: all K continuations of every prefix, no certificates, no early stop.
ALL_K = {"early_stop": False, "stop_at_success": False, "reuse_rollouts": False}


def _run(config, rollouts=None, script=SCRIPT, **kw):
    rollouts = rollouts or [Rollout(rollout_id="r0", problem_id=P.problem_id, completion=WRONG)]
    verdicts = [verify(P, r.completion, r.rollout_id) for r in rollouts]
    fake = Scripted(script)
    return label_monte_carlo([P], rollouts, verdicts, config=config, continue_fn=fake, **kw), fake


@pytest.mark.parametrize(
    "estimator, values, prefix_value",
    [("best_of_k", [1.0, 0.0, 0.0], 1.0), ("mean", [0.5, 0.0, 0.0], 0.5), ("bok_from_mean", [0.75, 0.0, 0.0], 0.75)],
)
def test_exact_values_first_pit_labels(estimator, values, prefix_value):
    (lab,), fake = _run(MonteCarloConfig(k=2, estimator=estimator, **ALL_K))
    assert isinstance(lab, StepLabels) and lab.source == "mc"
    assert [s.text for s in lab.steps] == ["3+4=7\n", "7*2=15\n", "Answer: 15"]
    assert lab.values == values and lab.prefix_value == prefix_value
    assert lab.first_error == 1 and lab.labels == [True, False, False]
    assert lab.advantages == [values[0] - prefix_value, values[1] - values[0], 0.0]
    # One batched call: 3 prefixes (prompt, 2 step prefixes; the last step needs none) × K=2.
    assert len(fake.calls) == 1 and len(fake.calls[0]) == 6


def test_estimators_and_pit_rules():
    cfg = MonteCarloConfig(k=4)
    assert estimate_value([False, True, None, False], cfg) == 1.0
    assert estimate_value([None, None], cfg) is None
    assert estimate_value([True, False, False, False], MonteCarloConfig(k=4, estimator="mean")) == 0.25
    assert estimate_value([True, False], MonteCarloConfig(k=2, estimator="bok_from_mean", bok_k=3)) == 0.875
    assert find_pit([1.0, 0.5, 0.0, 0.0]) == 2
    assert find_pit([0.5, 0.25, 0.5, 0.25], "first_min") == 1
    assert find_pit([1.0, None, 1.0], "first_min") is None and find_pit([1.0, 1.0]) is None
    with pytest.raises(ValueError, match="estimator"):
        MonteCarloConfig(estimator="max")
    with pytest.raises(ValueError, match="early_stop"):
        MonteCarloConfig(early_stop=True, pit_rule="first_min")


def test_dedup_and_only_incorrect():
    rollouts = [
        Rollout(rollout_id="a", problem_id=P.problem_id, completion=WRONG),
        Rollout(rollout_id="b", problem_id=P.problem_id, completion=WRONG),
        Rollout(rollout_id="c", problem_id=P.problem_id, completion="3+4=7\n7*2=14\nAnswer: 14"),
    ]
    labs, fake = _run(MonteCarloConfig(k=2, **ALL_K), rollouts)
    assert [lab.rollout_id for lab in labs] == ["a", "b"]  # the correct rollout is not labelled by default
    assert len(fake.calls[0]) == 6  # identical prefixes of a and b are computed once
    assert labs[0].values == labs[1].values
    script = {**SCRIPT, P.prompt + "3+4=7\n7*2=14\n": ["Answer: 14"]}
    labs, fake = _run(MonteCarloConfig(k=2, only_incorrect=False, **ALL_K), rollouts, script)
    assert [lab.rollout_id for lab in labs] == ["a", "b", "c"]
    assert labs[2].values == [1.0, 1.0, 1.0] and labs[2].first_error is None and all(labs[2].labels)
    assert len(fake.calls[0]) == 8  # + the one extra prefix of c


def test_early_stop_skips_prefixes_after_the_first_zero():
    script = {**SCRIPT, P.prompt + "3+4=7\n": ["7*2=15\nAnswer: 15"]}  # step 0 now has value 0
    all_k = {**ALL_K, "early_stop": True}
    (lab,), fake = _run(MonteCarloConfig(k=2, **all_k), script=script)
    assert lab.values == [0.0, None, 0.0] and lab.first_error == 0 and lab.labels == [False, False, False]
    assert sum(len(c) for c in fake.calls) == 4  # prompt + step 0 only
    (lab,), fake = _run(MonteCarloConfig(k=2, **all_k))
    assert lab.values == [1.0, 0.0, 0.0] and len(fake.calls) == 2


class Hashed:
    """Deterministic in (text, seed, copy index): a correct or a wrong answer line, by hash."""

    def __init__(self, problems, fail_after=None):
        self.by_prompt = {p.prompt: p for p in problems}
        self.fail_after = fail_after
        self.n_calls = 0

    def __call__(self, texts, seed):
        self.n_calls += 1
        if self.fail_after is not None and self.n_calls > self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        out, seen = [], {}
        for t in texts:
            j = seen[t] = seen.get(t, -1) + 1
            p = next(self.by_prompt[k] for k in self.by_prompt if t.startswith(k))
            h = int(hashlib.sha1(f"{t}|{seed}|{j}".encode()).hexdigest(), 16)
            out.append(f"Answer: {int(p.answer) + (h % 2 == 0)}")
        return out


def _resume_inputs():
    """5 problems × 2 wrong rollouts (10 rollouts; unit_size=2 → 5 units)."""
    problems = [_problem(a, b, f) for a, b, f in [(1, 2, 3), (2, 5, 2), (4, 4, 3), (6, 1, 2), (3, 3, 4)]]
    rollouts, verdicts = [], []
    for p in problems:
        s, _ = p.meta["values"]
        for k, comp in enumerate([f"{p.meta['operands'][0]}+{p.meta['operands'][1]}={s}\n{s}*2=1\nAnswer: 1",
                                  f"9+9={s + 1}\nAnswer: 0"]):
            r = Rollout(rollout_id=f"{p.problem_id}#{k}", problem_id=p.problem_id, completion=comp)
            rollouts.append(r)
            verdicts.append(verify(p, comp, r.rollout_id))
    return problems, rollouts, verdicts


def test_resume_after_interruption_gives_identical_labels(tmp_path):
    problems, rollouts, verdicts = _resume_inputs()
    cfg = MonteCarloConfig(k=1, unit_size=2, show_progress=False, **ALL_K)  # one call per unit
    full = label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=Hashed(problems),
                             out_dir=tmp_path / "full")
    assert len(full) == 10 and any(lab.prefix_value == 0 for lab in full) and any(lab.prefix_value == 1 for lab in full)
    with pytest.raises(KeyboardInterrupt):
        label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=Hashed(problems, fail_after=2),
                          out_dir=tmp_path / "resumed")
    shards = sorted((tmp_path / "resumed").glob("shard-*.jsonl"))
    assert len(shards) == 2 and not (tmp_path / "resumed" / "manifest.json").exists()
    again = Hashed(problems)
    resumed = label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=again,
                                out_dir=tmp_path / "resumed")
    assert again.n_calls == 3  # only the 3 unfinished units ran
    assert [lab.to_row() for lab in resumed] == [lab.to_row() for lab in full]
    assert (tmp_path / "resumed" / "manifest.json").exists()
    # Unit seeds do not depend on where the unit ran: a fresh in-memory run agrees as well.
    mem = label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=Hashed(problems))
    assert [lab.to_row() for lab in mem] == [lab.to_row() for lab in full]


def test_plan_units_keeps_problems_whole():
    rs = [Rollout(rollout_id=str(i), problem_id=pid, completion="") for i, pid in enumerate("aabbbcd")]
    assert plan_units(rs, 3) == [[0, 1], [2, 3, 4], [5, 6]]


def test_hf_generation_path(tiny_model, char_tokenizer):
    """The default continue_fn (negrl.generation) runs end to end; a random model never succeeds → values 0."""
    rollouts = [Rollout(rollout_id="r0", problem_id=P.problem_id, completion=WRONG)]
    verdicts = [verify(P, WRONG, "r0")]
    cfg = MonteCarloConfig(k=2, max_new_tokens=6, show_progress=False)
    (lab,) = label_monte_carlo([P], rollouts, verdicts, tiny_model, char_tokenizer, cfg)
    assert lab.values == [0.0, None, 0.0] and lab.prefix_value == 0.0 and lab.first_error == 0  # early stop


@pytest.mark.slow
def test_real_model_path(trained_policy_dir, arithmetic_task):
    """The default continue_fn (negrl.generation) on the trained tiny policy: values in {0,1}, wrong → pit."""
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.modeling import load_policy
    from negrl.verifiers import verify_rollouts

    model, tok = load_policy(str(trained_policy_dir), device="cpu")
    problems = arithmetic_task.generate_problems(12, seed=7)
    rollouts = generate_rollouts(problems, model, tok, GenerationConfig(num_samples=2, max_new_tokens=32, seed=1,
                                                                       show_progress=False))
    verdicts = verify_rollouts(problems, rollouts)
    assert any(v.correct is False for v in verdicts)
    cfg = MonteCarloConfig(k=4, max_new_tokens=32, show_progress=False)
    labs = label_monte_carlo(problems, rollouts, verdicts, model, tok, cfg)
    assert len(labs) == sum(v.correct is False for v in verdicts)
    for lab in labs:  # (early stop: no values after the pit)
        assert lab.values[-1] == 0.0 and lab.first_error is not None
        assert all(v in (0.0, 1.0, None) for v in lab.values) and lab.prefix_value in (0.0, 1.0)
        assert all(v == 1.0 for v in lab.values[: lab.first_error]) and lab.values[lab.first_error] == 0.0
    assert labs == label_monte_carlo(problems, rollouts, verdicts, model, tok, cfg)  # seeded: reproducible


DIST_SCRIPT = """
import json, os, sys
sys.path[:0] = [{tests!r}, {root!r}]
from test_steps_mc import _resume_inputs, Hashed
from negrl.steps.monte_carlo import MonteCarloConfig, label_monte_carlo
problems, rollouts, verdicts = _resume_inputs()
labs = label_monte_carlo(problems, rollouts, verdicts, config=MonteCarloConfig(k=1, unit_size=2, show_progress=False),
                         continue_fn=Hashed(problems), out_dir=sys.argv[1])
with open(os.path.join(sys.argv[1], "result-" + os.environ["RANK"] + ".json"), "w") as f:
    json.dump([lab.to_row() for lab in labs], f)
"""


@pytest.mark.slow
def test_two_processes_split_units_and_agree(tmp_path):
    """torchrun with 2 CPU processes: units split, one stage per process, every process returns all labels."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    script = tmp_path / "run.py"
    script.write_text(DIST_SCRIPT.format(tests=str(tests), root=str(tests.parent)))
    torchrun = Path(sys.executable).with_name("torchrun")
    # --standalone: a free rendezvous port, so a busy default port (29500) cannot fail the run.
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    problems, rollouts, verdicts = _resume_inputs()
    single = label_monte_carlo(problems, rollouts, verdicts, config=MonteCarloConfig(k=1, unit_size=2),
                               continue_fn=Hashed(problems))
    expected = [lab.to_row() for lab in single]
    for rank in (0, 1):
        assert json.loads((tmp_path / "out" / f"result-{rank}.json").read_text()) == expected
    assert (tmp_path / "out" / "proc-00-of-02" / "manifest.json").exists()
    assert (tmp_path / "out" / "proc-01-of-02" / "manifest.json").exists()
