"""Library output that tells a negrl user nothing, silenced where negrl calls the library (scoped, then restored).

``quiet_library()`` is entered around the calls that print it (``negrl.modeling.load_policy`` / ``save_policy``,
``negrl.sft.train_sft``); nothing is filtered globally, so a user's own calls to the same libraries print as usual.
What it hides, and why each says nothing:

- transformers' ``Loading weights`` / ``Writing model shards`` bars: drawn on every ``from_pretrained`` /
  ``save_pretrained``, even of a 100-kB model, and a comparison loads and saves a model per method and per
  evaluation. Hidden by their description through transformers' tqdm hook; download bars (huggingface_hub) and
  training bars stay.
- ``datasets`` ``map`` / ``filter`` bars of TRL's internal preprocessing (building labels, truncating, dropping
  masked rows): bookkeeping steps of rows negrl already tokenised.
- transformers' FutureWarning "`is_gradient_checkpointing` is deprecated": peft's ``get_peft_model`` and TRL read
  the deprecated property themselves; negrl never sets the deprecated option (``negrl.sft.NegrlSFTConfig``).
- "mtime may not be reliable on this filesystem": logged when two checkpoints are written within a second (a short
  run), not a filesystem problem; transformers then orders checkpoints by step, which is what resuming needs.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any


QUIET_BARS = ("Loading weights", "Writing model shards")
QUIET_WARNINGS = (r"`is_gradient_checkpointing` is deprecated",)
QUIET_LOGS = {"transformers.trainer_utils": "mtime may not be reliable"}


class _DropMessages(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


@contextlib.contextmanager
def _quiet_bars() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    def hook(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("desc") in QUIET_BARS:
            kwargs = {**kwargs, "disable": True}
        return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

    previous = hf_logging.set_tqdm_hook(hook)
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)


@contextlib.contextmanager
def _quiet_dataset_bars() -> Iterator[None]:
    import datasets

    # HF_DATASETS_DISABLE_PROGRESS_BARS, when set, has the last word (datasets warns on any toggle then)
    toggle = not datasets.are_progress_bars_disabled() and datasets.config.HF_DATASETS_DISABLE_PROGRESS_BARS is None
    if toggle:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if toggle:
            datasets.enable_progress_bars()


@contextlib.contextmanager
def quiet_library() -> Iterator[None]:
    """Within this scope, hide the library output listed in the module docstring; restore everything after."""
    filters = [(logging.getLogger(name), _DropMessages(fragment)) for name, fragment in QUIET_LOGS.items()]
    with warnings.catch_warnings(), _quiet_bars(), _quiet_dataset_bars():
        for message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        for logger, f in filters:
            logger.addFilter(f)
        try:
            yield
        finally:
            for logger, f in filters:
                logger.removeFilter(f)
