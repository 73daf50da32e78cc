"""Generation: order and determinism under length bucketing, stop strings, finish reasons, rollout ids; vLLM on GPU."""

from __future__ import annotations

import sys

import pytest
import torch

from negrl.generation import GenerationConfig, cut_at_stop, format_prompt, generate_rollouts, generate_texts
from negrl.records import Problem


PROMPTS = ["Q: 1+2\n", "Q: ((12*3)-7)+45\n", "Q: 9\n", "Q: (4*4)*2\n", "Q: ((((1+1)+1)+1)+1)+1\n", "Q: 77-7\n"]


def _cfg(**kw) -> GenerationConfig:
    base = {"max_new_tokens": 16, "show_progress": False, "seed": 3}
    return GenerationConfig(**{**base, **kw})


@pytest.fixture()
def sharp_model(tiny_model):
    """The random tiny model with its matrices scaled ×20: greedy outputs then differ from prompt to prompt."""
    with torch.no_grad():
        for p in tiny_model.parameters():
            if p.dim() == 2:
                p.mul_(20)
    return tiny_model


def test_greedy_output_does_not_depend_on_batching(sharp_model, char_tokenizer) -> None:
    one = generate_texts(PROMPTS, sharp_model, char_tokenizer, _cfg(temperature=0.0, batch_size=1))
    many = generate_texts(PROMPTS, sharp_model, char_tokenizer, _cfg(temperature=0.0, batch_size=4))
    assert [g.text for g in one] == [g.text for g in many]  # results come back in input order
    assert len({g.text for g in one}) == len(PROMPTS)


def test_sampling_is_seeded(tiny_model, char_tokenizer) -> None:
    a = generate_texts(PROMPTS, tiny_model, char_tokenizer, _cfg(batch_size=4))
    b = generate_texts(PROMPTS, tiny_model, char_tokenizer, _cfg(batch_size=4))
    c = generate_texts(PROMPTS, tiny_model, char_tokenizer, _cfg(batch_size=4, seed=4))
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in c]


def test_stop_strings_are_cut_and_finish_reasons_are_right(tiny_model, char_tokenizer) -> None:
    stops = list("0123456789")
    out = generate_texts(PROMPTS * 4, tiny_model, char_tokenizer, _cfg(stop=stops, max_new_tokens=24, batch_size=8))
    assert all(not any(s in g.text for s in stops) for g in out)
    assert any(g.finish_reason == "stop" for g in out)
    free = generate_texts(PROMPTS * 4, tiny_model, char_tokenizer, _cfg(max_new_tokens=24, batch_size=8))
    for g in free:  # (special tokens a random model samples are not in the text, so a "length" text may be shorter)
        n_tokens = len(char_tokenizer(g.text, add_special_tokens=False)["input_ids"])
        if n_tokens == 24:
            assert g.finish_reason == "length", g
    assert {g.finish_reason for g in free} == {"stop", "length"}
    assert cut_at_stop("abc\n\nQuestion: x", ["\n\nQuestion:", "x"]) == ("abc", True)
    assert cut_at_stop("abc", ["z"]) == ("abc", False)


def test_generate_rollouts_ids_and_samples(tiny_model, char_tokenizer) -> None:
    problems = [Problem(problem_id=f"p{i}", domain="arithmetic", prompt=p) for i, p in enumerate(PROMPTS[:3])]
    rollouts = generate_rollouts(problems, tiny_model, char_tokenizer, _cfg(num_samples=3, batch_size=4), "tiny")
    assert [r.rollout_id for r in rollouts[:4]] == ["p0#0", "p0#1", "p0#2", "p1#0"]
    assert len(rollouts) == 9 and all(r.model == "tiny" and r.seed == 3 for r in rollouts)
    assert len({r.completion for r in rollouts if r.problem_id == "p0"}) > 1  # samples differ
    assert "vllm" not in sys.modules  # the CPU path never imports vLLM


def test_format_prompt_and_config_validation(char_tokenizer) -> None:
    assert format_prompt("Q: 1\n", char_tokenizer, use_chat_template=False) == "Q: 1\n"
    with pytest.raises(ValueError, match="no chat template"):
        format_prompt("Q: 1\n", char_tokenizer, use_chat_template=True)
    with pytest.raises(ValueError):
        GenerationConfig(backend="onnx")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_vllm_backend_matches_the_interface(tmp_path, char_tokenizer) -> None:
    pytest.importorskip("vllm")
    from negrl.generation.vllm import load_vllm
    from negrl.modeling import build_tiny_llama, save_policy

    model = build_tiny_llama(hidden_size=128, num_layers=2, num_heads=2, seed=0)  # head_dim 64: every attention backend
    save_policy(model, char_tokenizer, tmp_path)
    llm = load_vllm(str(tmp_path), gpu_memory_utilization=0.2)
    problems = [Problem(problem_id=f"p{i}", domain="arithmetic", prompt=p) for i, p in enumerate(PROMPTS)]
    cfg = _cfg(backend="vllm", num_samples=2, stop=["7"], max_new_tokens=12)
    a = generate_rollouts(problems, llm, char_tokenizer, cfg)
    b = generate_rollouts(problems, llm, char_tokenizer, cfg)
    assert [r.rollout_id for r in a] == [f"p{i}#{k}" for i in range(len(PROMPTS)) for k in range(2)]
    assert [r.completion for r in a] == [r.completion for r in b]  # seeded
    assert all("7" not in r.completion and r.finish_reason in ("stop", "length") for r in a)
    greedy_hf = generate_texts(PROMPTS, model.to("cuda"), char_tokenizer, _cfg(temperature=0.0))
    greedy_vllm = generate_texts(PROMPTS, llm, char_tokenizer, _cfg(temperature=0.0, backend="vllm"))
    agree = sum(x.text == y.text for x, y in zip(greedy_hf, greedy_vllm))
    assert agree >= len(PROMPTS) - 1  # fp32 vs vLLM kernels may flip a near-tie
