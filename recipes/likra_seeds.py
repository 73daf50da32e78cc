"""Likra on ARC over seeds: base, SFT and Likra per negative arm (random / near-miss), paired differences with
t-intervals over seeds.

    OMP_NUM_THREADS=1 python recipes/likra_seeds.py --config recipes/configs/likra/arc_seeds.yaml \\
        [--set seeds=[0,1] n_test=100] [--report_only] [--figure docs/results/likra_arc_seeds.png]

Resumable: every trained head and scored vector is cached under ``{output_dir}/{benchmark}/seed{s}/``; a rerun
skips what is done (``--report_only`` trains nothing and tabulates the complete seeds). Writes
``{output_dir}/summary.json``, ``report.md`` (printed) and the accuracy figure.
"""

from __future__ import annotations

from negrl.experiments.cli import config_parser
from negrl.experiments.likra_seeds import load_seeds_config, run, write_report


def main(argv: list[str] | None = None) -> None:
    parser = config_parser("likra_seeds.py", __doc__.split("\n")[0])  # --config FILE --set KEY=VALUE ...
    parser.add_argument("--report_only", action="store_true", help="train nothing; tabulate the cached seeds")
    parser.add_argument("--figure", default=None, help="PNG path (default {output_dir}/accuracy.png)")
    args = parser.parse_args(argv)
    cfg = load_seeds_config(args.config, args.set)
    if not args.report_only:
        run(cfg)
    text, figure = write_report(cfg, args.figure)
    print(text)
    print("figure:", figure)


if __name__ == "__main__":
    main()
