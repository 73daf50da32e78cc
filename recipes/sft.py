"""Train the embedded base policy: a tiny Llama on a fixed set of gold demonstrations (TRL ``SFTTrainer``).

Commands:

    # the default base policy (n3d2 arithmetic, 3,000 gold problems, 0.14M parameters; ~4-5 min on 2 CPU cores)
    python recipes/sft.py --config recipes/configs/base/arithmetic.yaml

    # any field can be overridden on the command line
    python recipes/sft.py --config recipes/configs/base/arithmetic.yaml --n_train 4000 --output_dir runs/base/n4000

    # under accelerate (one process here; the same command runs DDP on several GPUs)
    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/sft.py \
        --config recipes/configs/base/arithmetic.yaml

Writes a model directory (``from_pretrained``-loadable), the problem splits, ``metrics.json`` and ``config.yaml`` to
``--output_dir`` and prints held-out greedy and sampled accuracy.
"""

from negrl.experiments.cli import base_parser, train_base


make_parser = base_parser  # = negrl train base


def main(argv: list[str] | None = None) -> None:
    train_base(argv)


if __name__ == "__main__":
    main()
