"""Validate step-correctness sources against the exact checker of the arithmetic task.

Commands:

    # MC, PRM (trained on MC labels), the policy itself as judge, consensus — vs the oracle (a few minutes on CPU)
    python recipes/validate_steps.py --config recipes/configs/steps/validate_arithmetic.yaml

    # SmolLM2-135M-Instruct as the LLM judge (offline GGUF), on the first 48 rollouts only
    python recipes/validate_steps.py --config recipes/configs/steps/validate_arithmetic.yaml \
        --set judge=smollm2 judge_limit=48 output_dir=runs/steps/validate_smollm2

Prints the precision / recall / accuracy of the first wrong step per source (all rollouts, and wrong ones only) and
the pairwise agreement; writes ``metrics.json``, ``table.md``, every source's labels (stages) and the resolved
``config.json`` to ``output_dir``. Logic: ``negrl.experiments.validate_steps``.
"""

from __future__ import annotations

import json

from negrl.experiments.cli import config_parser
from negrl.experiments.config import load_config
from negrl.experiments.validate_steps import ValidateStepsConfig, run_validation


def main(argv: list[str] | None = None) -> None:
    parser = config_parser("validate_steps.py", __doc__.split("\n")[0], config_required=False)
    args = parser.parse_args(argv)
    cfg = load_config(ValidateStepsConfig, args.config, args.set)
    result = run_validation(cfg)
    print(result["table"])
    print("\n### Pairwise agreement (steps both sources know)")
    for row in result["agreement"]:
        print(json.dumps(row))
    print(json.dumps(result["summary"]))


if __name__ == "__main__":
    main()
