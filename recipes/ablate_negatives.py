"""Negative-volume ablation: accuracy vs negatives per problem / negative:positive ratio / Likra negatives, per seed.

Commands:

    # the small configuration run in this repository (2 seeds, 256 prompts; needs the base policy
    # from: python recipes/sft.py --config recipes/configs/base/arithmetic.yaml)
    python recipes/ablate_negatives.py --config recipes/configs/ablation/negatives_small.yaml

    # the larger sweep (3 seeds, 1500 prompts, volumes up to 16; not run here)
    python recipes/ablate_negatives.py --config recipes/configs/ablation/negatives_full.yaml --seeds 0 1 2 3 4

Samples once per seed with the largest volume (the pipeline's cached data stages under ``<output_dir>/data``) and
subsamples the cached rollouts / step labels per sweep point; every point is cached under ``<output_dir>/points``, so
a rerun (or a larger ``--seeds``) trains only what is missing. Writes ``runs.csv``, ``table.md``,
``negatives_<kind>.png`` and the resolved ``ablation_config.yaml`` to ``<output_dir>``. Parallel workers: start the same command several times (each trains the points no other live worker holds),
then once more with ``--report_only`` for the complete outputs. Logic: ``negrl.experiments.ablation``.
"""

from __future__ import annotations

import argparse

from negrl.experiments.ablation import AblationConfig, run_ablation
from negrl.experiments.ablation_report import write_ablation_outputs


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
    rows = run_ablation(acfg, report_only=a.report_only)
    paths = write_ablation_outputs(rows, acfg.output_dir)
    print(paths["table"].read_text(encoding="utf-8"))
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
