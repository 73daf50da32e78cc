"""Train Likra's two LoRA heads (``pos`` on correct answers, ``neg`` on wrong ones) on a multiple-choice benchmark.

    accelerate launch --config_file recipes/accelerate_configs/<name>.yaml recipes/train_likra.py \\
        --config recipes/configs/likra/smollm2_arc_easy.yaml [--set heads.learning_rate=1e-4 negative.pick=first]
    python recipes/train_likra.py --config recipes/configs/likra/tiny_arithmetic_choice.yaml

Writes ``{output_dir}/config.json`` and ``{output_dir}/checkpoints/n{N}/{pos,neg}`` at power-of-two N.
"""

from __future__ import annotations

import argparse

from negrl.experiments.likra_curve import load_experiment_config, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="YAML file of LikraExperimentConfig fields")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, e.g. heads.r=16")
    args = parser.parse_args(argv)
    cfg = load_experiment_config(args.config, args.set)
    for head, paths in train(cfg).items():
        print(f"{head}: {len(paths)} checkpoints, last {paths[-1] if paths else None}")


if __name__ == "__main__":
    main()
