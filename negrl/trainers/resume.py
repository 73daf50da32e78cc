"""Resume an interrupted training run from the last complete checkpoint of its output directory.

Every negrl training entry point calls ``train_resuming(trainer)`` instead of ``trainer.train()``. What it does is
decided by the trainer config's own ``resume_from_checkpoint`` field (so a YAML key, a ``--resume_from_checkpoint``
flag or a pipeline ``method_options`` entry all work the same way):

- unset (the default), ``"last"``, ``"auto"`` or ``"true"``: resume from the last *complete* checkpoint under
  ``output_dir`` if there is one, else start fresh;
- ``"no"`` / ``"false"`` / ``"never"`` / ``"fresh"``: force a fresh start — the ``checkpoint-*`` folders already
  under ``output_dir`` are deleted first, so a later resume cannot mix the old run's higher-numbered checkpoints
  with the new run's;
- any other value: the path of a checkpoint folder to resume from (it must exist).

A checkpoint counts as complete when its ``trainer_state.json`` parses and names the folder's step: ``Trainer``
writes that file last (after the weights, optimizer, scheduler and RNG states), so a folder left by a kill in the
middle of saving is skipped in favour of the one before it (hence ``save_total_limit=2`` in
``negrl.trainer_defaults.CheckpointDefaults``).

On resume ``Trainer`` restores the weights (the LoRA adapters for a PEFT model, every named adapter of a
multi-adapter model), the optimizer, the scheduler, the RNG states and the position in the data (it skips the
batches already seen), so a resumed run reaches the same weights as an uninterrupted one with the same seed
(``tests/test_resume.py`` kills runs with SIGKILL to check that). A checkpoint written under other training
settings (learning rate, schedule, batch size, seed, the method's own knobs, ...) is refused with the differences
listed; the data and the starting model are not checked — force a fresh start after changing them.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

from negrl.quiet import quiet_library
from negrl.trainer_defaults import WarmupCheck


logger = logging.getLogger(__name__)

AUTO = ("", "last", "auto", "true")
FRESH = ("no", "false", "never", "fresh", "none")
# TrainingArguments fields that change the trained weights; a config subclass's own fields count too.
SETTINGS = ("learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "warmup_ratio",
            "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "optim",
            "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps", "seed",
            "data_seed")
NOT_SETTINGS = {"save_strategy", "save_steps", "save_total_limit", "bf16"}
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The ``checkpoint-N`` folders directly under ``output_dir``, by increasing step ``N``."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def is_complete_checkpoint(path: Path) -> bool:
    """True when ``path/trainer_state.json`` (written last by ``Trainer``) parses and names the folder's step."""
    match = _CHECKPOINT.match(path.name)
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(match) and isinstance(state, dict) and state.get("global_step") == int(match.group(1))


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest-step complete checkpoint under ``output_dir`` (see the module docstring), or None."""
    for path in reversed(checkpoints(output_dir)):
        if is_complete_checkpoint(path):
            return path
        logger.warning("skipping incomplete checkpoint %s (no valid trainer_state.json: interrupted while saving?)",
                       path)
    return None


def resolve_resume(output_dir: str | Path, resume_from_checkpoint: Any) -> tuple[str | None, bool]:
    """``(checkpoint to resume from or None, whether to start fresh)`` for a config's ``resume_from_checkpoint``."""
    value = "" if resume_from_checkpoint is None else str(resume_from_checkpoint).strip()
    if value.lower() in FRESH or resume_from_checkpoint is False:
        return None, True
    if value.lower() in AUTO or resume_from_checkpoint is True:
        found = last_complete_checkpoint(output_dir)
        return (str(found) if found else None), False
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={value!r}: no such directory (expected a checkpoint-N "
                                f"folder; use 'last' for the newest under output_dir, 'no' for a fresh start)")
    if not is_complete_checkpoint(path):
        raise ValueError(f"resume_from_checkpoint={value!r} is not a complete checkpoint (no valid "
                         f"trainer_state.json)")
    return str(path), False


def train_resuming(trainer: Any) -> Any:
    """``trainer.train()``, resumed from the checkpoint ``trainer.args`` selects (module docstring); returns its output.

    With a fresh start forced, the main process deletes the old ``checkpoint-*`` folders first and every process
    waits for it.
    """
    args = trainer.args
    trainer.add_callback(WarmupCheck())  # the run's total steps are known only once training starts
    checkpoint, fresh = resolve_resume(args.output_dir, args.resume_from_checkpoint)
    if fresh:
        if args.should_save:
            for old in checkpoints(args.output_dir):
                logger.warning("fresh start requested: deleting %s", old)
                shutil.rmtree(old)
        trainer.accelerator.wait_for_everyone()
    if checkpoint is None:
        with quiet_library():  # TRL's is_gradient_checkpointing reads, the short-run mtime notice
            return trainer.train()
    check_same_settings(checkpoint, args)
    if _finished(checkpoint, args):
        return _load_finished(trainer, checkpoint)
    logger.warning("resuming training from %s", checkpoint)
    with quiet_library():
        return trainer.train(resume_from_checkpoint=checkpoint)


def check_same_settings(checkpoint: str, args: Any) -> None:
    """Refuse to resume from a checkpoint written under other training settings (``SETTINGS`` and the config
    class's own fields): the resumed run would match neither the old settings nor the new ones."""
    from transformers import TrainingArguments

    path = Path(checkpoint) / "training_args.bin"
    if not path.exists():
        return
    import torch

    old = torch.load(path, weights_only=False)  # Trainer's own pickle of the run's arguments
    own = {f.name for f in fields(type(args))} - {f.name for f in fields(TrainingArguments)}
    keys = sorted((set(SETTINGS) | own) - NOT_SETTINGS)
    differ = {k: (getattr(old, k, None), getattr(args, k, None)) for k in keys
              if getattr(old, k, None) != getattr(args, k, None)}
    if differ:
        shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"{checkpoint} was written with other training settings ({shown}); set "
                         f"resume_from_checkpoint to 'no' to start fresh, or restore the settings to resume")


def _finished(checkpoint: str, args: Any) -> bool:
    """True when ``checkpoint`` is the last step of the run ``args`` describe (same planned length)."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    planned = state.get("max_steps")
    if not isinstance(planned, int) or state["global_step"] < planned:
        return False
    if args.max_steps > 0:
        return args.max_steps == planned
    return state.get("num_train_epochs") == math.ceil(args.num_train_epochs)


def _load_finished(trainer: Any, checkpoint: str) -> Any:
    """Load a finished run's last checkpoint without training.

    ``Trainer.train(resume_from_checkpoint=...)`` on a checkpoint at the run's last step trains one more step
    (transformers 5.24 resumes inside the last epoch before it checks ``max_steps``), so a rerun after a kill between
    the last checkpoint and the end of the process would not reproduce the uninterrupted weights.
    """
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    logger.warning("training already finished at %s: loading it instead of training", checkpoint)
    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    losses = [h["train_loss"] for h in trainer.state.log_history if "train_loss" in h]
    return TrainOutput(trainer.state.global_step, losses[-1] if losses else float("nan"), {})
