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

from trl import TrlParser

from negrl.experiments.base_policy import BasePolicyConfig, base_sft_args, train_base_policy
from negrl.sft import NegrlSFTConfig


def make_parser() -> TrlParser:
    return TrlParser((BasePolicyConfig, NegrlSFTConfig))


def main(cfg: BasePolicyConfig, sft_args: NegrlSFTConfig) -> None:
    # Start from negrl's base-policy defaults; the YAML / CLI values in `sft_args` that differ from TRL's own
    # defaults win, so the config file only has to hold overrides.
    trl_defaults = NegrlSFTConfig(output_dir=sft_args.output_dir).to_dict()
    overrides = {k: v for k, v in sft_args.to_dict().items() if trl_defaults.get(k) != v and k in trl_defaults}
    overrides.pop("output_dir", None)
    args = base_sft_args(sft_args.output_dir, **overrides)
    metrics = train_base_policy(cfg, args)
    print(
        f"base policy {metrics['task']} ({metrics['parameters']:,} params, {metrics['train_seconds']:.0f} s): "
        f"held-out greedy {100 * metrics['held_out_greedy']:.1f}%, sampled {100 * metrics['held_out_sampled']:.1f}% "
        f"(n={metrics['held_out_n']}); train greedy {100 * metrics['train_greedy']:.1f}%"
    )


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
