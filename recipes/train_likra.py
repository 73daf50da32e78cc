"""Train Likra's two LoRA heads (``pos`` on correct answers, ``neg`` on wrong ones) on a multiple-choice benchmark.

    accelerate launch --config_file recipes/accelerate_configs/<name>.yaml recipes/train_likra.py \\
        --config recipes/configs/likra/smollm2_arc_easy.yaml [--set heads.learning_rate=1e-4 negative.pick=first]
    python recipes/train_likra.py --config recipes/configs/likra/tiny_arithmetic_choice.yaml

Writes ``{output_dir}/config.json`` and ``{output_dir}/checkpoints/n{N}/{pos,neg}`` at power-of-two N.
"""

import sys

from negrl.experiments.cli import train_likra


def main(argv: list[str] | None = None) -> None:
    train_likra(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
