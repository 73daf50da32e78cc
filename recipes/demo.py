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

import argparse
import time
from pathlib import Path

from negrl.experiments.demo import run_demo


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="recipes/configs/demo/arithmetic.yaml", help="demo YAML")
    parser.add_argument("--fresh", action="store_true", help="delete the demo's output directory first")
    return parser


def main(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    report = run_demo(Path(args.config), fresh=args.fresh)
    print(report)
    print(f"\ndemo wall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(make_parser().parse_args())
