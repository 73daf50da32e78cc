"""Likra learning curve in one command: train both heads (unless checkpoints exist), score every checkpoint, plot.

    python recipes/likra_curve.py --config recipes/configs/likra/tiny_arithmetic_choice.yaml
    accelerate launch --config_file recipes/accelerate_configs/<name>.yaml recipes/likra_curve.py \\
        --config recipes/configs/likra/smollm2_arc_easy.yaml --set n_test=200

Writes ``{output_dir}/learning_curve.png`` (acc_norm vs examples per head: SFT vs Likra vs Base-Likra),
``metrics.jsonl`` / ``volume.jsonl`` and the resolved ``config.json``.
"""

from __future__ import annotations

from pathlib import Path

from negrl.experiments.cli import config_parser
from negrl.experiments.likra_curve import (
    curve_rows,
    evaluate,
    format_table,
    load_experiment_config,
    plot_curve,
    train,
    volume_rows,
    write_rows,
)
from negrl.likra.heads import list_checkpoints


def main(argv: list[str] | None = None) -> None:
    parser = config_parser("likra_curve.py", __doc__.split("\n")[0])  # --config FILE --set KEY=VALUE ...
    parser.add_argument("--w", type=float, default=1.0, help="negative-head weight drawn in the plot")
    parser.add_argument("--metric", default="acc_norm", choices=["acc", "acc_norm"])
    args = parser.parse_args(argv)
    cfg = load_experiment_config(args.config, args.set)
    out = Path(cfg.output_dir)
    if not (list_checkpoints(out, "pos") and list_checkpoints(out, "neg")):
        train(cfg)
    evaluate(cfg)
    rows = curve_rows(out, cfg.ws)
    write_rows(rows, out / "metrics.jsonl")
    vol = volume_rows(out, cfg.ws)
    write_rows(vol, out / "volume.jsonl")
    print(format_table(rows, ["n", "mode", "w", "acc", "acc_norm"]))
    print(format_table(vol, ["neg_n", "mode", "w", "acc", "acc_norm"]))
    print("plot:", plot_curve(rows, out / "learning_curve.png", w=args.w, metric=args.metric))


if __name__ == "__main__":
    main()
