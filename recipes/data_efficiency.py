"""Data-efficiency curve: accuracy vs #training problems for SFT (gold), RFT and per-step DPO, and the multiplier.

Commands:

    # the small configuration run in this repository (2 seeds; needs the base policy
    # from: python recipes/sft.py --config recipes/configs/base/arithmetic.yaml)
    python recipes/data_efficiency.py --config recipes/configs/ablation/efficiency_small.yaml

    # the larger curve (3 seeds, up to 2048 problems; not run here)
    python recipes/data_efficiency.py --config recipes/configs/ablation/efficiency_full.yaml

Samples once per seed for the largest size and trains each method on nested prefixes of those problems (cached per
point under ``<output_dir>/points``; a rerun trains only what is missing; ``--report_only`` writes the outputs from
the finished points alone). The multiplier is how many more problems
SFT / RFT need to reach per-step DPO's accuracy, interpolated in log(#problems), with per-seed values and a
bootstrap-over-seeds interval; "not reached" / "< 1×" when the curves say so. Writes ``runs.csv``, ``table.md``,
``multiplier.md``, ``multiplier.json``, ``efficiency.png`` and ``efficiency_config.yaml`` to ``<output_dir>``.
Parallel workers: start the same command several times (each trains the points no other live worker holds),
then once more with ``--report_only`` for the complete outputs. Logic: ``negrl.experiments.ablation``.
"""

from __future__ import annotations

import argparse

from negrl.experiments.ablation import AblationConfig, run_efficiency
from negrl.experiments.ablation_report import write_efficiency_outputs


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML of negrl.experiments.ablation.AblationConfig fields")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--report_only", action="store_true",
                        help="train nothing: write the outputs from the points that have finished")
    return parser


def main() -> None:
    a = make_parser().parse_args()
    acfg = AblationConfig.from_yaml(a.config, seeds=a.seeds, output_dir=a.output_dir)
    rows = run_efficiency(acfg, report_only=a.report_only)
    paths = write_efficiency_outputs(rows, acfg, acfg.output_dir)
    print(paths["table"].read_text(encoding="utf-8"))
    print(paths["multiplier"].read_text(encoding="utf-8"))
    for name in ("csv", "table", "multiplier", "plot"):
        print(f"{name}: {paths[name]}")


if __name__ == "__main__":
    main()
