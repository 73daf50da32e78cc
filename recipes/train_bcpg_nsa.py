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

    # a distilled reasoning model on MATH (one GPU, one process: the vLLM engine and the LoRA policy share it)
    python recipes/train_bcpg_nsa.py --config recipes/configs/bcpg/r1_distill_qwen_1.5b_math.yaml

Writes the cached stages (rollouts, verdicts, samples, labels-*), the merged policy (``policy/``), ``metrics.json``
(held-out accuracy, mining statistics) and the resolved ``config.yaml`` to ``--output_dir``.
"""

from negrl.experiments.cli import bcpg_parser, train_bcpg


make_parser = bcpg_parser  # = negrl train bcpg_nsa


def main(argv: list[str] | None = None) -> None:
    train_bcpg(argv)


if __name__ == "__main__":
    main()
