"""A worker process for ``math-verify`` (run by ``negrl.verifiers.math``; one JSON request per line on stdin).

Why a process: sympy can run for hours on a short input and holds the GIL meanwhile, so no thread can time it
out; a process can be killed. Here, in its own main thread, math-verify's signal-based timeouts work too (an inner
bound; the parent's deadline and ``SIGKILL`` are the outer one).

Request ``{"gold": str, "answer": str, "timeout_s": int}`` → reply ``{"result": true | false | null, "timed_out":
bool}`` (``null``: the gold could not be parsed or math-verify failed; ``timed_out``: it ran into its own timeout,
which math-verify reports as a plain failure).
"""

from __future__ import annotations

import json
import sys
import time


def judge(gold: str, answer: str, timeout_s: int) -> bool | None:
    from math_verify import parse
    from math_verify import verify as mv_verify

    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout_s)
        if not gold_parsed:
            return None
        pred_parsed = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout_s)
        if not pred_parsed:
            return False
        return bool(mv_verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s))
    except Exception:  # a timeout or a sympy failure: could not verify
        return None


def main() -> None:
    import math_verify  # noqa: F401  (imported once, before the first request: sympy takes a while)

    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        start = time.monotonic()
        result = judge(req["gold"], req["answer"], int(req["timeout_s"]))
        timed_out = time.monotonic() - start >= int(req["timeout_s"]) - 0.5
        sys.stdout.write(json.dumps({"result": result, "timed_out": timed_out}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
