"""The per-step negatives experiment: base vs SFT-more vs RFT vs outcome DPO vs per-step DPO vs AWR, several seeds.

Commands:

    # the embedded arithmetic task (needs the base policy: python recipes/sft.py --config recipes/configs/base/arithmetic.yaml)
    python recipes/compare_methods.py --config recipes/configs/step_rl/arithmetic.yaml --seeds 0 1 2

    # a subset of methods, another output directory
    python recipes/compare_methods.py --config recipes/configs/step_rl/arithmetic.yaml --seeds 0 \
        --methods base rft step_dpo --output_dir runs/compare/try

Every stage is cached under ``<output_dir>/seed<k>/`` (rerunning reuses finished stages and models). Writes
``results.md`` (mean ± std over seeds of held-out greedy and sampled accuracy) and ``results.json`` to
``<output_dir>`` and prints the table. Logic: ``negrl.experiments.pipeline``.
"""

import sys

from negrl.experiments.cli import cmd_compare


def main(argv: list[str] | None = None) -> None:
    cmd_compare(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
