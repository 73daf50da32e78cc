"""`make demo`: the whole negative-sample pipeline on the embedded default, on CPU, in minutes.

    base policy (tiny Llama, SFT on limited gold data) → rollouts → verification → Monte-Carlo step labels
      → RFT · per-step DPO · BCPG-NSA · Likra reranker (LoRA on the base) → held-out accuracy table

Commands:

    python recipes/demo.py                                              # = make demo (arithmetic task)
    python recipes/demo.py --config recipes/configs/demo/path_star.yaml   # the path-star graph task
    python recipes/demo.py --fresh                                       # ignore cached stages, start over

Every stage's output stays under the config's ``output_dir`` (default ``runs/demo/<task>``); a second run reuses
finished stages (and resumes an interrupted one), so it only prints the table again.
"""

import sys

from negrl.experiments.cli import cmd_demo


def main(argv: list[str] | None = None) -> None:
    cmd_demo(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
