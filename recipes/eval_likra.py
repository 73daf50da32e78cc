"""Score a trained Likra run: base, SFT (pos head), Likra, Base-Likra and pos−base, acc and acc_norm.

    python recipes/eval_likra.py --config recipes/configs/likra/smollm2_arc_easy.yaml [--set eval_points=[512]]

Caches each (head, checkpoint) score vector in ``{output_dir}/logps`` (resumable), then writes
``{output_dir}/metrics.jsonl`` (learning curve rows) and ``{output_dir}/volume.jsonl`` (pos fixed, neg volume varied),
and prints both as markdown tables.
"""

from __future__ import annotations

from pathlib import Path

from negrl.experiments.cli import config_parser
from negrl.experiments.config import write_resolved_config
from negrl.experiments.likra_curve import (
    curve_rows,
    evaluate,
    format_table,
    load_experiment_config,
    volume_rows,
    write_rows,
)


def main(argv: list[str] | None = None) -> None:
    parser = config_parser("eval_likra.py", __doc__.split("\n")[0])  # --config FILE --set KEY=VALUE ...
    args = parser.parse_args(argv)
    cfg = load_experiment_config(args.config, args.set)
    out = Path(cfg.output_dir)
    write_resolved_config(out / "eval" / "config.json", {"experiment": cfg})
    evaluate(cfg)
    rows = curve_rows(out, cfg.ws)
    write_rows(rows, out / "metrics.jsonl")
    print(format_table(rows, ["n", "mode", "w", "acc", "acc_norm"]))
    vol = volume_rows(out, cfg.ws)
    write_rows(vol, out / "volume.jsonl")
    print(format_table(vol, ["neg_n", "mode", "w", "acc", "acc_norm"]))


if __name__ == "__main__":
    main()
