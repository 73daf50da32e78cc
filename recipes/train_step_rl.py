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

from __future__ import annotations

import argparse
import json

from negrl.experiments.compare import run_pipeline
from negrl.experiments.pipeline import load_pipeline_config


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML of negrl.experiments.pipeline.PipelineConfig fields")
    parser.add_argument("--method", action="append", default=None, help="method(s) to train (repeatable)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--base_policy", default=None)
    parser.add_argument("--n_prompts", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    return parser


def main() -> None:
    a = make_parser().parse_args()
    cfg = load_pipeline_config(a.config, methods=a.method, seed=a.seed, output_dir=a.output_dir,
                               base_policy=a.base_policy, n_prompts=a.n_prompts, threads=a.threads)
    out = run_pipeline(cfg)
    if out["results"]:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
