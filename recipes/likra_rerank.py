"""Likra as a reranker: sample k solutions per problem, train pos/neg heads on verified samples, rerank held-out ones.

    python recipes/likra_rerank.py --config recipes/configs/likra/rerank_arithmetic.yaml [--set k=4 n_train=256]
    accelerate launch --config_file recipes/accelerate_configs/<name>.yaml recipes/likra_rerank.py --config ...

Writes ``{output_dir}/config.json``, the pipeline's rollout stages (``train/``, ``test/``), the heads'
checkpoints and ``{output_dir}/rerank.jsonl``; prints the table (top-scored accuracy vs random, majority vote,
positive head alone, base, oracle pass@k).
"""

from __future__ import annotations

from pathlib import Path

from negrl.experiments.cli import config_parser
from negrl.experiments.config import load_config
from negrl.experiments.likra_curve import format_table, write_rows
from negrl.experiments.likra_rerank import RerankConfig, run_rerank


def main(argv: list[str] | None = None) -> None:
    parser = config_parser("likra_rerank.py", __doc__.split("\n")[0])  # --config FILE --set KEY=VALUE ...
    args = parser.parse_args(argv)
    cfg = load_config(RerankConfig, args.config, args.set)
    rows = run_rerank(cfg)
    write_rows(rows, Path(cfg.output_dir) / "rerank.jsonl")
    print(format_table([r for r in rows if r["method"] != "counts"], ["method", "w", "norm", "acc"]))
    print(rows[-1])


if __name__ == "__main__":
    main()
