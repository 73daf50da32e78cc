"""BCPG-NSA iterations: repeat generate → label → train for ``--rounds`` rounds, each from the latest policy.

Each round's merged policy is the behaviour policy of the next round (fresh problems each round, new behaviour
log-probs, new labels), as in the paper's multi-iteration experiments.

Commands:

    python recipes/bcpg_iterate.py --config recipes/configs/bcpg/tiny_arithmetic.yaml --rounds 3 \
        --output_dir runs/bcpg/iterate

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/bcpg_iterate.py \
        --config recipes/configs/bcpg/r1_distill_qwen_1.5b_math.yaml --rounds 2

Writes ``round-00/``, ``round-01/``, ... (each as ``recipes/train_bcpg_nsa.py`` writes) and ``rounds.json``.
"""

from pathlib import Path

import torch
from trl import TrlParser

from negrl.experiments.bcpg import BCPGRunConfig, run_rounds
from negrl.trainers.bcpg_nsa import BCPGNSAConfig


def make_parser() -> TrlParser:
    return TrlParser((BCPGRunConfig, BCPGNSAConfig))


def main(cfg: BCPGRunConfig, args: BCPGNSAConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for m in run_rounds(cfg, args, Path(args.output_dir), seed=args.seed):
        print(f"round {m['round']}: {m['rows']} rows, {m['negatives']} negatives, held-out {m['held_out']}")


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
