"""The per-step negatives experiment: base vs SFT-more vs RFT vs outcome DPO vs per-step DPO vs AWR, several seeds.

Commands:

    # the embedded arithmetic task (needs the base policy: python recipes/sft.py --config recipes/configs/base/arithmetic.yaml)
    python recipes/compare_methods.py --config recipes/configs/step_rl/arithmetic.yaml --seeds 0 1 2

    # a subset of methods, another output directory
    python recipes/compare_methods.py --config recipes/configs/step_rl/arithmetic.yaml --seeds 0 \
        --methods base rft step_dpo --output_dir runs/compare/try

Every stage is cached under ``<output_dir>/seed<k>/`` (rerunning reuses finished stages and models). Writes
``results.md`` (mean ± std over seeds of held-out greedy and sampled accuracy) and ``results.json`` to
``<output_dir>`` and prints the table. Logic: ``negrl.experiments.pipeline``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from negrl.experiments.compare import results_table, run_seeds
from negrl.experiments.pipeline import load_pipeline_config


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML of negrl.experiments.pipeline.PipelineConfig fields")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help="override the config's method list")
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--base_policy", default=None)
    parser.add_argument("--n_prompts", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    return parser


def main() -> None:
    a = make_parser().parse_args()
    cfg = load_pipeline_config(a.config, methods=a.methods, output_dir=a.output_dir, base_policy=a.base_policy,
                               n_prompts=a.n_prompts, threads=a.threads)
    runs = run_seeds(cfg, a.seeds)
    table = results_table(runs)
    out = Path(cfg.output_dir)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=2), encoding="utf-8")
    for seed, run in runs.items():
        print(f"seed {seed} data: {json.dumps(run['data'])}")
    print(table)


if __name__ == "__main__":
    main()
