"""The one process state of a run (``accelerate`` ``PartialState``), and its orderly teardown.

Launched with ``torchrun`` / ``accelerate launch``, every stage asks ``process_state()`` who it is. On a CPU the
state needs ``cpu=True`` (gloo backend): without it each ``torchrun`` process sees a world of one.

Why a teardown hook: a gloo process group that is still alive when the interpreter exits is destroyed during C++
static teardown, where its worker threads can still be joinable; the process then dies with ``terminate called
without an active exception`` (SIGABRT) *after* its work is done, intermittently and more often on a loaded machine.
Destroying the group from an ``atexit`` hook, while the interpreter is intact, avoids that. ``import negrl`` registers
the hook, so it covers every entry point (stages here, and trainers whose ``Accelerator`` started the group).
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any


def num_processes() -> int:
    """Processes launched by ``accelerate launch`` / torchrun (1 otherwise); reads the env, starts no backend."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_state() -> Any:
    """The shared ``PartialState`` (a singleton: every call returns the same process facts)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def destroy_process_group() -> None:
    """Tear down the default process group if one is up (safe to call more than once, or with none)."""
    dist = sys.modules.get("torch.distributed")  # never imports torch just to find nothing to tear down
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


atexit.register(destroy_process_group)
