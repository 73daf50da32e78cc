"""The process-group teardown that keeps torchrun processes from aborting at exit (negrl.processes)."""

import subprocess
import sys


SCRIPT = """
import atexit, socket
import torch.distributed as dist
import negrl  # registers the teardown
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
assert dist.is_initialized()
atexit._run_exitfuncs()  # what the interpreter runs at exit, before C++ static teardown
print("left-up" if dist.is_initialized() else "torn-down")
"""


def test_import_negrl_tears_the_process_group_down_at_exit():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "torn-down"


def test_teardown_without_a_group_is_a_no_op():
    from negrl.processes import destroy_process_group, num_processes

    destroy_process_group()  # nothing initialised: must not raise
    destroy_process_group()
    assert num_processes() >= 1
