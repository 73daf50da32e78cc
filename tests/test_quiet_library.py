"""Library output that says nothing to a user is silenced where negrl calls the library, and only there."""

from __future__ import annotations

import logging
import warnings

import pytest

from negrl.quiet import quiet_library


@pytest.fixture()
def saved_policy(tmp_path, tiny_model, char_tokenizer):
    from negrl.modeling import save_policy

    save_policy(tiny_model, char_tokenizer, tmp_path / "policy")
    return tmp_path / "policy"


def test_loading_and_saving_a_policy_draw_no_bars(saved_policy, tmp_path, capfd):
    from transformers import AutoModelForCausalLM

    from negrl.modeling import load_policy, save_policy

    capfd.readouterr()
    model, tok = load_policy(saved_policy, device="cpu")
    save_policy(model, tok, tmp_path / "again")
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err, err
    AutoModelForCausalLM.from_pretrained(saved_policy)  # the user's own call, outside negrl: its bar is drawn
    assert "Loading weights" in capfd.readouterr().err


def test_lora_sft_prints_no_deprecation_nor_preprocessing_bars(tiny_model, char_tokenizer, tmp_path, capfd):
    from negrl.lora import lora_config
    from negrl.sft import cpu_safe_sft_config, prompt_completion_dataset, train_sft

    rows = prompt_completion_dataset(["Q: 2+3\n"] * 4, ["A: 5"] * 4)
    args = cpu_safe_sft_config(output_dir=str(tmp_path / "sft"), max_steps=3, per_device_train_batch_size=2,
                               report_to=[], disable_tqdm=True, save_steps=1)  # fmt: skip
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_sft(tiny_model, char_tokenizer, rows, args, peft_config=lora_config())
    assert not [w for w in caught if "gradient_checkpointing" in str(w.message)]
    err = capfd.readouterr().err
    for noise in ("is_gradient_checkpointing", "Building labels", "Truncating train dataset", "mtime may not"):
        assert noise not in err, err


def test_scope_restores_filters_hook_and_bars():
    import datasets
    from transformers.utils import logging as hf_logging

    before = list(warnings.filters)
    bars = datasets.are_progress_bars_disabled()
    with quiet_library():
        assert datasets.are_progress_bars_disabled()
        with pytest.warns(UserWarning):  # other warnings still show inside the scope
            warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert warnings.filters == before
    assert datasets.are_progress_bars_disabled() == bars
    assert hf_logging.set_tqdm_hook(None) is None  # no hook left behind
    assert not logging.getLogger("transformers.trainer_utils").filters


def test_math_verify_prints_nothing(capfd):
    """math-verify runs in a worker whose stderr is discarded: its timeout notices never reach the user."""
    pytest.importorskip("math_verify")
    from negrl.verifiers.math import judge_answer

    capfd.readouterr()
    assert judge_answer(r"\frac{\sqrt{2}}{2}", r"\sin(\pi/4)") == (True, "")
    assert capfd.readouterr().err == ""
