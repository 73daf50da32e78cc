"""A warmup as long as the run is reported (issue 14, item 9): ``warmup_steps: 10`` with 2 steps never reaches the LR."""

from __future__ import annotations

import logging

import pytest

from negrl.trainer_defaults import warmup_covers_run


def test_warmup_covers_run_names_both_numbers() -> None:
    message = warmup_covers_run(10, 2, 1e-4)
    assert message is not None and "warmup_steps=10" in message and "2 optimizer steps" in message
    assert "1e-05" in message  # the last of the 2 steps trains at 1e-4 * 1/10, as the issue measured
    assert warmup_covers_run(2, 2, 1e-4) is not None  # equal: the last step still trains below the LR
    assert warmup_covers_run(1, 2, 1e-4) is None and warmup_covers_run(0, 5, 1e-4) is None


def _train(tmp_path, char_tokenizer, tiny_model, arithmetic_task, **overrides) -> None:
    from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft

    train, _ = arithmetic_task.make_splits(8, 0, seed=0)
    args = cpu_safe_sft_config(output_dir=str(tmp_path / "trainer"), learning_rate=1e-4, max_steps=2,
                               per_device_train_batch_size=4, logging_steps=1000, disable_tqdm=True,
                               save_strategy="no", report_to=[], **overrides)
    train_sft(tiny_model, char_tokenizer, gold_dataset(train), args)


@pytest.mark.parametrize(("options", "warned"), [
    ({"lr_scheduler_type": "cosine", "warmup_steps": 10}, True),
    ({"lr_scheduler_type": "cosine", "warmup_steps": 0.1}, False),  # a fraction scales with the run: 1 of 2 steps
    ({"lr_scheduler_type": "constant", "warmup_steps": 10}, False),  # this schedule ignores warmup
])
def test_training_warns_when_warmup_covers_the_run(tmp_path, caplog, char_tokenizer, tiny_model, arithmetic_task,
                                                   options, warned) -> None:
    with caplog.at_level(logging.WARNING, logger="negrl.trainer_defaults"):
        _train(tmp_path, char_tokenizer, tiny_model, arithmetic_task, **options)
    hits = [r.getMessage() for r in caplog.records if r.name == "negrl.trainer_defaults"]
    assert bool(hits) is warned, hits
    if warned:
        assert "warmup_steps=10" in hits[0] and "2 optimizer steps" in hits[0] and "learning_rate=0.0001" in hits[0]
