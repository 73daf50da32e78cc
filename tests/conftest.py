"""Shared fixtures: the char tokenizer, tiny models built from configs (no downloads), a cheaply trained policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# On an oversubscribed machine (load >= cores) intra-op threads spin against each other: tiny-model generation
# measured 30x slower with 2 threads than with 1 at load 13 on 2 cores.
torch.set_num_threads(1 if os.getloadavg()[0] >= (os.cpu_count() or 1) else max(1, min(2, os.cpu_count() or 1)))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real benchmark files); tests using it are skipped cleanly when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def char_tokenizer():
    from negrl.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture()
def tiny_model():
    """A fresh ~11k-parameter Llama (hidden 32, 1 layer, 2 heads), randomly initialised with seed 0."""
    from negrl.modeling import build_tiny_llama

    return build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)


@pytest.fixture(scope="session")
def arithmetic_task():
    from negrl.tasks import get_task

    return get_task("arithmetic", min_steps=1, max_steps=2, digits=1, max_value=99)


@pytest.fixture(scope="session")
def trained_policy_dir(tmp_path_factory, arithmetic_task, char_tokenizer) -> Path:
    """A 0.1M-parameter policy trained ~15 s on 1–2 step, 1-digit problems: produces both right and wrong answers.

    Session-scoped and saved as a model directory, so tests load it with ``from_pretrained`` / ``load_policy``.
    """
    from negrl.modeling import build_tiny_llama, save_policy
    from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft

    out = tmp_path_factory.mktemp("trained_policy")
    train, _ = arithmetic_task.make_splits(2000, 64, seed=0)
    model = build_tiny_llama(hidden_size=64, num_layers=2, num_heads=4, seed=0)
    args = cpu_safe_sft_config(
        output_dir=str(out / "trainer"), learning_rate=3e-3, lr_scheduler_type="cosine", warmup_steps=20,
        per_device_train_batch_size=64, num_train_epochs=3, logging_steps=1000, disable_tqdm=True, seed=0,
    )
    train_sft(model, char_tokenizer, gold_dataset(train), args)
    save_policy(model, char_tokenizer, out)
    return out
