"""BCPG-NSA rounds on the vLLM backend, without vLLM: a fake ``vllm`` module records what the rounds hand it.

The fake's ``LLM`` only accepts a model path (a torch model there would be the bug this covers), answers every
request in vLLM's output shape (``RequestOutput.outputs[j]``: ``text``, ``token_ids``, ``finish_reason``,
``stop_reason``) with canned right and wrong solutions, and records each request's ``LoRARequest``.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


# --------------------------------------------------------------------------------------------------- stacking


def _random_adapter(model, r: int, alpha: int, seed: int):
    from peft import get_peft_model

    from negrl.lora import lora_config

    torch.manual_seed(seed)
    return get_peft_model(model, lora_config(r=r, lora_alpha=alpha, init_lora_weights=False))


def test_stacked_adapter_on_the_base_equals_the_merged_rounds(tmp_path):
    """Round 1's LoRA is trained on round 0's merged policy; the stacked adapter on the base gives the same weights."""
    from peft import PeftModel

    from negrl.lora import stack_lora_adapters
    from negrl.modeling import build_tiny_llama

    def base():
        return build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)

    p0 = _random_adapter(base(), r=4, alpha=8, seed=1)
    p0.save_pretrained(tmp_path / "a0")
    p1 = _random_adapter(p0.merge_and_unload(), r=2, alpha=16, seed=2)  # other rank and scaling
    p1.save_pretrained(tmp_path / "a1")
    want = p1.merge_and_unload().state_dict()

    out = stack_lora_adapters([tmp_path / "a0", tmp_path / "a1"], tmp_path / "stacked", base_model="the-base")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 6 and config["lora_alpha"] == 6 and config["base_model_name_or_path"] == "the-base"
    got = PeftModel.from_pretrained(base(), str(out)).merge_and_unload().state_dict()
    assert set(got) == set(want)
    worst = max((got[k] - want[k]).abs().max().item() for k in want)
    assert worst < 1e-5, worst
    first = base().state_dict()
    assert any((want[k] - first[k]).abs().max() > 1e-3 for k in want)  # the rounds did change the weights


def test_stacking_refuses_adapters_of_other_modules(tmp_path):
    from peft import get_peft_model

    from negrl.lora import lora_config, stack_lora_adapters
    from negrl.modeling import build_tiny_llama

    model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    _random_adapter(model, 4, 8, 0).save_pretrained(tmp_path / "a0")
    model = build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    get_peft_model(model, lora_config(target_modules=["q_proj"])).save_pretrained(tmp_path / "a1")
    with pytest.raises(ValueError, match="other modules"):
        stack_lora_adapters([tmp_path / "a0", tmp_path / "a1"], tmp_path / "s")


# --------------------------------------------------------------------------------------------------- fake vLLM


@dataclass
class _Completion:  # vllm.outputs.CompletionOutput's fields that negrl reads
    text: str
    token_ids: list[int]
    finish_reason: str
    stop_reason: int | str | None = None


@dataclass
class _RequestOutput:  # vllm.outputs.RequestOutput
    outputs: list[_Completion]


class FakeLLM:
    """Records the engine's construction, every ``generate`` (with its ``lora_request``) and sleep / wake-up."""

    instances: list[FakeLLM] = []
    answer = None  # (prompt text, draw) -> completion text; set by the test

    def __init__(self, model, **kwargs) -> None:
        if not isinstance(model, str):
            raise TypeError(f"vllm.LLM(model=...) takes a name or path, got {type(model).__name__}")
        self.model, self.kwargs = model, kwargs
        self.calls: list[dict] = []
        self.events: list[str] = []
        FakeLLM.instances.append(self)

    def generate(self, prompts, sampling_params, *, use_tqdm=True, lora_request=None):
        assert "sleep" not in self.events[-1:], "generate on a sleeping engine"
        texts = []
        outs = []
        for prompt, params in zip(prompts, sampling_params):
            assert isinstance(prompt, dict) and set(prompt) == {"prompt_token_ids"}, prompt
            text = self.tokenizer.decode(prompt["prompt_token_ids"])
            texts.append(text)
            completions = []
            for j in range(params.n):
                out = FakeLLM.answer(text, (params.seed or 0) + j)  # a request's seed and sample: its draw
                ids = self.tokenizer(out, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
                completions.append(_Completion(out, ids, "stop"))
            outs.append(_RequestOutput(completions))
        self.calls.append({"prompts": texts, "lora": lora_request, "n": [p.n for p in sampling_params]})
        return outs

    def sleep(self, level: int = 1) -> None:
        self.events.append(f"sleep{level}")

    def wake_up(self) -> None:
        self.events.append("wake")


class FakeSamplingParams:
    def __init__(self, **kwargs) -> None:
        self.__dict__.update(kwargs)


class FakeLoRARequest:
    def __init__(self, lora_name: str, lora_int_id: int, lora_path: str) -> None:
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path


@pytest.fixture()
def fake_vllm(monkeypatch, char_tokenizer):
    """``vllm``, ``vllm.lora`` and ``vllm.lora.request`` as fakes in ``sys.modules``; the engine registry reset."""
    import importlib.machinery

    from negrl.generation import vllm as backend

    modules = {}
    for name in ("vllm", "vllm.lora", "vllm.lora.request"):
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec("vllm") sees it as installed
        modules[name] = mod
        monkeypatch.setitem(sys.modules, name, mod)
    modules["vllm"].LLM, modules["vllm"].SamplingParams = FakeLLM, FakeSamplingParams
    modules["vllm.lora.request"].LoRARequest = FakeLoRARequest
    FakeLLM.instances = []
    monkeypatch.setattr(FakeLLM, "tokenizer", char_tokenizer, raising=False)
    backend.close_vllm_engine()
    yield FakeLLM
    backend.close_vllm_engine()


@pytest.fixture()
def base_policy(tmp_path, char_tokenizer) -> Path:
    from negrl.modeling import build_tiny_llama, save_policy

    out = tmp_path / "base"
    save_policy(build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0),
                char_tokenizer, out)
    return out


def _canned_answers(cfg, rounds: int):
    """Answers by problem: even draws right, odd ones wrong; a Monte-Carlo prefix is completed by the gold
    solution when it is one of its prefixes (else a wrong answer)."""
    from negrl.experiments.bcpg import round_problems

    problems = {}
    for r in range(rounds):
        train, held = round_problems(cfg, seed_offset=1000 * r)
        problems.update({p.prompt: p for p in [*train, *held]})

    def answer(text: str, j: int) -> str:
        prompt = max((p for p in problems if text.startswith(p)), key=len)
        p, prefix = problems[prompt], text[len(prompt):]
        wrong = p.solution.rsplit("Answer: ", 1)[0] + f"Answer: {int(p.answer) + 1}"
        if not prefix:
            return p.solution if j % 2 == 0 else wrong
        return p.solution[len(prefix):] if p.solution.startswith(prefix) else "Answer: 0"

    return answer, problems


def test_rounds_sample_on_one_engine_with_the_previous_rounds_adapter(fake_vllm, base_policy, tmp_path,
                                                                     char_tokenizer):
    """Two vLLM rounds: one engine of the base; round 0 samples the base, round 1 round 0's stacked adapter (fresh
    samples and Monte-Carlo continuations alike), each round's held-out eval its own adapter; the engine sleeps while
    the torch policy trains."""
    from negrl.experiments.bcpg import STACKED_ADAPTER, BCPGRunConfig, round_problems, run_rounds
    from negrl.io import read_stage
    from negrl.records import Rollout
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig

    cfg = BCPGRunConfig(policy=str(base_policy), task_kwargs={"min_steps": 1, "max_steps": 2, "digits": 1,
                        "max_value": 99}, n_problems=6, num_samples=4, annotator="mc", mc_k=2, max_new_tokens=24,
                        backend="vllm", eval_problems=2, eval_samples=1, rounds=2, lora_r=4, lora_alpha=8)
    fake_vllm.answer, problems = _canned_answers(cfg, rounds=2)
    args = BCPGNSAConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, num_train_epochs=1,
                         learning_rate=1e-3, disable_tqdm=True, max_length=128, report_to=[])
    history = run_rounds(cfg, args, tmp_path / "run")

    assert len(fake_vllm.instances) == 1  # one engine for both rounds and the Monte-Carlo labelling
    llm = fake_vllm.instances[0]
    assert llm.model == str(base_policy)
    assert llm.kwargs["enable_lora"] is True and llm.kwargs["max_lora_rank"] == 8  # lora_r 4 × 2 rounds
    assert llm.kwargs["enable_prefix_caching"] is True and llm.kwargs["enable_sleep_mode"] is True
    assert llm.events == ["sleep1", "wake", "sleep1", "wake"]  # asleep while each round trains

    stacked = [str(tmp_path / "run" / f"round-{r:02d}" / "policy" / STACKED_ADAPTER) for r in (0, 1)]
    held = {p.prompt for p in round_problems(cfg)[1]}

    def kind(call) -> str:  # "eval": held-out prompts only; "data": the round's samples and Monte-Carlo prefixes
        return "eval" if set(call["prompts"]) <= held else "data"

    seen = [(kind(c), None if c["lora"] is None else c["lora"].lora_path) for c in llm.calls]
    phases = [k for i, k in enumerate(seen) if i == 0 or k != seen[i - 1]]  # runs of equal calls
    assert phases == [("data", None), ("eval", stacked[0]), ("data", stacked[0]), ("eval", stacked[1])], phases
    prefixed = {None if c["lora"] is None else c["lora"].lora_path for c in llm.calls  # Monte-Carlo step prefixes
                if any(t not in problems for t in c["prompts"])}
    assert prefixed == {None, stacked[0]}
    ids = {c["lora"].lora_path: c["lora"].lora_int_id for c in llm.calls if c["lora"] is not None}
    assert sorted(ids.values()) == [1, 2]  # one id per adapter, never 0 (vLLM's "no adapter")

    r1 = read_stage(tmp_path / "run" / "round-01" / "rollouts", Rollout)
    assert {r.model for r in r1} == {stacked[0]}
    eos = char_tokenizer.eos_token_id
    assert all(r.completion_ids and eos not in r.completion_ids for r in r1)  # EOS removed, as on hf
    for r, stacked_rank in ((0, 4), (1, 8)):
        config = json.loads((tmp_path / "run" / f"round-{r:02d}" / "policy" / STACKED_ADAPTER /
                             "adapter_config.json").read_text())
        assert config["r"] == stacked_rank and config["base_model_name_or_path"] == str(base_policy)
    assert [m["round"] for m in history] == [0, 1] and all(m["rows"] > 0 for m in history)


def test_mc_backend_vllm_with_a_model_path_reuses_the_engine(fake_vllm, base_policy, char_tokenizer):
    """``MonteCarloConfig(backend="vllm")`` / ``GenerationConfig(backend="vllm")`` given a path: the process's engine."""
    from negrl.generation import GenerationConfig, generate_texts
    from negrl.generation.vllm import VLLMPolicy

    fake_vllm.answer = lambda text, j: "1"
    policy = VLLMPolicy(str(base_policy), {"enable_lora": True})
    cfg = GenerationConfig(backend="vllm", temperature=0.0, show_progress=False)
    assert [g.text for g in generate_texts(["Q: 1\n"], policy, char_tokenizer, cfg)] == ["1"]
    assert [g.token_ids for g in generate_texts(["Q: 1\n"], str(base_policy), char_tokenizer, cfg)] == [
        char_tokenizer("1", add_special_tokens=False)["input_ids"]]
    assert len(fake_vllm.instances) == 1
    with pytest.raises(RuntimeError, match="one engine per process"):
        generate_texts(["Q: 1\n"], "other/model", char_tokenizer, cfg)
    with pytest.raises(TypeError, match="not a torch model"):
        generate_texts(["Q: 1\n"], torch.nn.Linear(1, 1), char_tokenizer, cfg)


def test_vllm_round_without_vllm_names_the_field(base_policy, tmp_path, monkeypatch):
    """No vllm importable: the round fails before writing anything, naming the config field."""
    from negrl.experiments.bcpg import BCPGRunConfig, run_round
    from negrl.generation import vllm as backend
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig

    monkeypatch.setattr(backend, "vllm_available", lambda: False)
    cfg = BCPGRunConfig(policy=str(base_policy), backend="vllm", n_problems=2)
    args = BCPGNSAConfig(output_dir=str(tmp_path / "run"), report_to=[])
    with pytest.raises(ImportError, match="backend: 'vllm' needs the vllm package"):
        run_round(cfg, args, cfg.policy, tmp_path / "run", seed=0)
    assert not (tmp_path / "run").exists()
