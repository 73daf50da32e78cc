"""BCPG-NSA iterations: repeat generate → label → train for ``--rounds`` rounds, each from the latest policy.

Each round's merged policy is the behaviour policy of the next round (fresh problems each round, new behaviour
log-probs, new labels), as in the paper's multi-iteration experiments.

Commands:

    python recipes/bcpg_iterate.py --config recipes/configs/bcpg/tiny_arithmetic.yaml --rounds 3 \
        --output_dir runs/bcpg/iterate

    # backend: vllm, one GPU, one process (one engine of the base for every round)
    python recipes/bcpg_iterate.py --config recipes/configs/bcpg/r1_distill_qwen_1.5b_math.yaml --rounds 2

Writes ``round-00/``, ``round-01/``, ... (each as ``recipes/train_bcpg_nsa.py`` writes) and ``rounds.json``.
"""

from negrl.experiments.cli import bcpg_parser, train_bcpg


make_parser = bcpg_parser  # = negrl train bcpg_rounds


def main(argv: list[str] | None = None) -> None:
    train_bcpg(argv, rounds=True)


if __name__ == "__main__":
    main()
