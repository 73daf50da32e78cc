"""BCPG-NSA (arXiv 2505.14403): one round of sample → verify → mine correct steps of negatives → train (LoRA).

Commands:

    # tiny CPU policy on the embedded arithmetic task (base policy from recipes/sft.py at runs/base/arithmetic)
    python recipes/train_bcpg_nsa.py --config recipes/configs/bcpg/tiny_arithmetic.yaml

    # plain BCPG (β = 1) or another annotator, from the command line
    python recipes/train_bcpg_nsa.py --config recipes/configs/bcpg/tiny_arithmetic.yaml --beta 1.0 \
        --output_dir runs/bcpg/tiny-beta1
    python recipes/train_bcpg_nsa.py --config recipes/configs/bcpg/tiny_arithmetic.yaml --annotator mc

    # under accelerate (one CPU process; the same command runs DDP / ZeRO-2 on GPUs)
    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/train_bcpg_nsa.py \
        --config recipes/configs/bcpg/tiny_arithmetic.yaml

    # a distilled reasoning model on MATH (GPU; vLLM sampling, LoRA)
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/train_bcpg_nsa.py \
        --config recipes/configs/bcpg/r1_distill_qwen_1.5b_math.yaml

Writes the cached stages (rollouts, verdicts, samples, labels-*), the merged policy (``policy/``), ``metrics.json``
(held-out accuracy, mining statistics) and the resolved ``config.yaml`` to ``--output_dir``.
"""

from pathlib import Path

import torch
from trl import TrlParser

from negrl.experiments.bcpg import BCPGRunConfig, run_round
from negrl.trainers.bcpg_nsa import BCPGNSAConfig


def make_parser() -> TrlParser:
    return TrlParser((BCPGRunConfig, BCPGNSAConfig))


def main(cfg: BCPGRunConfig, args: BCPGNSAConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    metrics = run_round(cfg, args, cfg.policy, Path(args.output_dir), seed=args.seed)
    print(f"BCPG-NSA (β={cfg.beta}, annotator={cfg.annotator}): {metrics['rows']} rows, "
          f"{metrics['negatives']} negatives; mining {metrics['mining']}; held-out {metrics['held_out']}")


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
