"""Iterated on-policy rounds over a fixed prompt pool: every arm against the best positives-only arm, paired by seed.

    python recipes/sft.py --config recipes/configs/base/arithmetic.yaml              # the base policy
    python recipes/rounds.py --config recipes/configs/rounds/fixed_pool.yaml        # regime (a)
    python recipes/rounds.py --config recipes/configs/rounds/scarce_positives.yaml  # regime (b)
    python recipes/rounds.py --config ... --seeds 0 --rounds 2                      # a smaller run
    python recipes/rounds.py --config recipes/configs/rounds/fixed_pool.yaml --arms rft --pool_size 600 \
        --output_dir runs/rounds/fixed_pool_rft600                               # a positives-only arm, 2x pool

Every stage is cached under the config's ``output_dir`` (rerun to resume). Writes ``results.md`` (the table: the
final round of every arm, the paired difference against the best positives-only arm with its 95 % interval over
seeds, pass@k, compute; then the measurements behind each result: the arms' sample accuracy and all-wrong prompts,
the pool / held-out gap, Monte-Carlo pits against the oracle, DPO pairs' log-prob shifts) and ``rounds.png`` (held-out accuracy per round, held-out vs pool, pass@k).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from negrl.experiments.demo import quiet_libraries
from negrl.experiments.rounds import load_rounds_config, plot_rounds, results_table, run_rounds
from negrl.experiments.rounds_report import mechanism_rows, mechanism_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a RoundsConfig YAML (recipes/configs/rounds/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the config's seeds")
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--output_dir", default=None, help="override the output directory")
    parser.add_argument("--pool_size", type=int, default=None, help="override the pool size P")
    parser.add_argument("--arms", nargs="+", default=None, help="run only these arms of the config")
    args = parser.parse_args(argv)
    quiet_libraries()
    cfg = load_rounds_config(args.config, seeds=args.seeds, rounds=args.rounds, output_dir=args.output_dir,
                             pool_size=args.pool_size)
    if args.arms:
        missing = set(args.arms) - set(cfg.arms)
        if missing:
            raise SystemExit(f"--arms: {sorted(missing)} not in {args.config} (arms: {sorted(cfg.arms)})")
        cfg.arms = {name: spec for name, spec in cfg.arms.items() if name in args.arms}
        cfg.arm_specs()
    runs = run_rounds(cfg)
    table = results_table(runs, cfg) + "\n\nWhat moved, per arm and round (mean over seeds):\n\n" + mechanism_table(
        mechanism_rows(cfg, runs))
    out = Path(cfg.output_dir)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    png = plot_rounds(runs, cfg, out / "rounds.png")
    print(table)
    print(f"wrote {out / 'results.md'} and {png}")


if __name__ == "__main__":
    main()
