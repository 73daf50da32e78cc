"""Train one method of the per-step negatives family from a base policy (data stages cached, then train + eval).

Methods (``negrl.experiments.methods.METHODS``): ``step_dpo`` (per-step DPO, paper format), ``step_dpo_prefix`` (shared-prefix
pairs), ``awr`` (advantage-weighted RL), ``rft``, ``outcome_dpo``, ``sft_more`` — and whatever other helpers register.

Commands:

    # one CPU process
    python recipes/train_step_rl.py --config recipes/configs/step_rl/arithmetic.yaml --method step_dpo

    # two CPU processes (gloo): torchrun; `accelerate launch` on CPU starts only one process without MPI
    torchrun --nproc_per_node 2 recipes/train_step_rl.py --config recipes/configs/step_rl/arithmetic.yaml --method awr

    # GPUs: DDP / DeepSpeed ZeRO-2 / ZeRO-3 / FSDP
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/train_step_rl.py \
        --config recipes/configs/step_rl/qwen_math_gsm8k.yaml --method step_dpo

Outputs under ``<output_dir>/seed<seed>/``: data stages, ``models/<method>/`` (LoRA merged), ``eval/<method>.json``,
``config.yaml``. Logic: ``negrl.experiments.pipeline``.
"""

import sys

from negrl.experiments.cli import train_methods


def main(argv: list[str] | None = None) -> None:
    train_methods(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
