"""Held-out evaluation sees the prompts (chat template) and the temperature that sampling used (issue 14, items 1, 9)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest


# A chat template made of characters the char tokenizer knows, so the whole formatted prompt round-trips.
CHAT = ("{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}")


@pytest.fixture()
def chat_tokenizer():
    from negrl.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    tok.chat_template = CHAT
    return tok


class GenerateSpy:
    """Wraps ``model.generate``: records each prompt text (decoded, padding removed) and the sampling temperature."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.prompts: list[str] = []
        self.temperatures: list[float | None] = []
        self._generate, self._tok = model.generate, tokenizer
        model.generate = self

    def __call__(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
        for row, mask in zip(input_ids, attention_mask):
            self.prompts.append(self._tok.decode(row[mask.bool()].tolist()))
        self.temperatures.append(kwargs.get("temperature"))
        return self._generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    def take(self) -> tuple[set[str], list[float | None]]:
        out = (set(self.prompts), list(self.temperatures))
        self.prompts, self.temperatures = [], []
        return out


def test_pipeline_evaluation_sees_the_sampling_prompts(tmp_path, monkeypatch, chat_tokenizer, tiny_model,
                                                        arithmetic_task) -> None:
    import negrl.modeling
    from negrl.experiments.compare import evaluate_method
    from negrl.experiments.pipeline import PipelineConfig, sample_rollouts
    from negrl.generation import format_prompt

    problems = arithmetic_task.generate_problems(3, seed=5)
    cfg = PipelineConfig(base_policy=str(tmp_path / "base"), output_dir=str(tmp_path / "run"), use_chat_template=True,
                         temperature=0.7, samples_per_prompt=1, eval_samples=1, max_new_tokens=2, batch_size=8)
    spy = GenerateSpy(tiny_model, chat_tokenizer)
    sample_rollouts(cfg, problems, tiny_model, chat_tokenizer)
    sampled, _ = spy.take()
    expected = {format_prompt(p.prompt, chat_tokenizer, True) for p in problems}
    assert sampled == expected and all(t.startswith("User: ") and t.endswith("Assistant:") for t in sampled)

    monkeypatch.setattr(negrl.modeling, "load_policy", lambda path: (tiny_model, chat_tokenizer))
    evaluate_method(cfg, "base_again", "unused", problems)
    evaluated, temperatures = spy.take()
    assert evaluated == sampled  # raw questions here were the bug: the policy was scored off-distribution
    assert 0.7 in temperatures and 1.0 not in temperatures  # greedy (None) and sampled at the run's T


def test_bcpg_evaluation_sees_the_sampling_prompts(tmp_path, chat_tokenizer, tiny_model, arithmetic_task) -> None:
    from negrl.experiments.bcpg import BCPGRunConfig, evaluate, sample_and_verify

    problems = arithmetic_task.generate_problems(3, seed=6)
    cfg = BCPGRunConfig(use_chat_template=True, temperature=0.6, num_samples=1, eval_samples=1, max_new_tokens=2,
                        gen_batch_size=8)
    spy = GenerateSpy(tiny_model, chat_tokenizer)
    sample_and_verify(problems, tiny_model, chat_tokenizer, cfg, seed=0, out_dir=tmp_path)
    sampled, _ = spy.take()
    evaluate(tiny_model, chat_tokenizer, problems, cfg, seed=0)
    evaluated, temperatures = spy.take()
    assert evaluated == sampled and all(t.startswith("User: ") for t in evaluated)
    assert 0.6 in temperatures and 1.0 not in temperatures


def test_evaluate_policy_chat_flag_defaults_off(chat_tokenizer, tiny_model, arithmetic_task) -> None:
    from negrl.evaluation import evaluate_policy

    problems = arithmetic_task.generate_problems(2, seed=7)
    spy = GenerateSpy(tiny_model, chat_tokenizer)
    evaluate_policy(problems, tiny_model, chat_tokenizer, max_new_tokens=1, samples=1)
    raw, _ = spy.take()
    assert raw == {p.prompt for p in problems}


@pytest.mark.parametrize("bench", ["gsm8k", "mbpp"])
def test_eval_run_chat_uses_the_training_prompt(tmp_path, shared_data, chat_tokenizer, tiny_model, bench) -> None:
    """``eval/run.py --chat true`` gives generation the string the pipeline samples with: no added instruction."""
    from eval.run import EvalConfig, evaluate_benchmark
    from negrl.experiments.pipeline import PipelineConfig, sample_rollouts
    from negrl.problems import load_problems

    problems = load_problems(bench, path=shared_data, limit=2)
    spy = GenerateSpy(tiny_model, chat_tokenizer)
    pipe = PipelineConfig(output_dir=str(tmp_path / "run"), use_chat_template=True, samples_per_prompt=1,
                          max_new_tokens=1, batch_size=8)
    sample_rollouts(pipe, problems, tiny_model, chat_tokenizer)
    sampled, _ = spy.take()
    cfg = EvalConfig(model="tiny", benchmarks=[bench], data_path=str(shared_data), limit=2, chat=True,
                     max_new_tokens=1, batch_size=8, verify_workers=1, output_dir=str(tmp_path / "eval"))
    evaluate_benchmark(cfg, bench, tiny_model, chat_tokenizer)
    evaluated, _ = spy.take()
    assert evaluated == sampled and len(evaluated) == 2
    assert not any("Please reason step by step" in t or "```python block" in t for t in evaluated)
    with_instruction = dataclasses.replace(cfg, chat_instruction=True)
    evaluate_benchmark(with_instruction, bench, tiny_model, chat_tokenizer)
    instructed, _ = spy.take()
    assert instructed.isdisjoint(sampled)  # the explicit option still adds the benchmark's instruction


def test_cached_pipeline_eval_measured_otherwise_is_refused(tmp_path, monkeypatch, chat_tokenizer, tiny_model,
                                                            arithmetic_task) -> None:
    """An ``eval/<name>.json`` from a raw-prompt, T=1 evaluation is not reused as a chat-template T=0.7 result."""
    import json

    import negrl.modeling
    from negrl.experiments.compare import evaluate_method
    from negrl.experiments.pipeline import PipelineConfig
    from negrl.io import StageError

    problems = arithmetic_task.generate_problems(2, seed=8)
    cfg = PipelineConfig(output_dir=str(tmp_path / "run"), samples_per_prompt=1, eval_samples=1, max_new_tokens=1)
    old = cfg.run_dir / "eval" / "m.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"method": "m", "greedy": 0.5, "sampled": 0.5, "n": 2}))  # no eval_settings: T=1, raw
    assert evaluate_method(cfg, "m", "unused", problems)["greedy"] == 0.5  # same settings: reused
    chat = PipelineConfig(output_dir=cfg.output_dir, use_chat_template=True, temperature=0.7, eval_samples=1,
                          max_new_tokens=1)
    with pytest.raises(StageError, match="use_chat_template"):
        evaluate_method(chat, "m", "unused", problems)
    monkeypatch.setattr(negrl.modeling, "load_policy", lambda path: (tiny_model, chat_tokenizer))
    fresh = evaluate_method(chat, "m2", "unused", problems)
    assert fresh["eval_settings"] == {"temperature": 0.7, "use_chat_template": True}
    assert evaluate_method(chat, "m2", "unused", problems) == fresh  # its own settings: reused
