"""BCPG-NSA experiment on an embedded task: RFT vs BCPG (β = 1) vs BCPG-NSA (β sweep), and the annotator ablation.

Every variant trains (LoRA on the same base) on the *same* problems and samples of a seed (``negrl.experiments.pipeline``
stages, cached under ``output_dir/seed{N}/``), then is evaluated on the base policy's held-out problems.

Commands:

    python recipes/bcpg_experiment.py --config recipes/configs/bcpg/experiment_arithmetic.yaml
    python recipes/bcpg_experiment.py --config recipes/configs/bcpg/experiment_arithmetic.yaml --seeds 0 1 2 \
        --only rft bcpg nsa_b0.5_consensus

The YAML holds ``negrl.experiments.pipeline.PipelineConfig`` fields plus ``variants`` (name → ``{method, **options}``),
``seeds`` and ``prm`` (``negrl.experiments.bcpg.TaskPRMConfig``: the PRM is trained first, on Monte-Carlo labels of other prompts,
when a variant's ``prm_model`` does not exist yet). Prints the accuracy table (mean ± std over seeds) and the mining table (negative-sample tokens mined by
each annotator and their precision against the exact step checker); writes both to
``output_dir/results-seeds{...}.md`` (seeds can run as parallel processes; a final run over all seeds reuses every
cached model and evaluation and only prints the combined tables).
"""

import argparse
import json
from pathlib import Path

import torch

from negrl.experiments.bcpg import TaskPRMConfig, mining_table, train_task_prm
from negrl.experiments.compare import results_table, run_variants
from negrl.experiments.config import read_yaml
from negrl.experiments.pipeline import load_pipeline_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML: pipeline fields + variants + seeds")
    parser.add_argument("--seeds", type=int, nargs="*", help="override the YAML's seeds")
    parser.add_argument("--only", nargs="*", help="run only these variants")
    parser.add_argument("--output_dir", help="override the YAML's output_dir")
    parser.add_argument("--base_policy", help="override the YAML's base_policy")
    a = parser.parse_args()
    raw = read_yaml(a.config)
    if raw.get("threads"):
        torch.set_num_threads(raw["threads"])
    variants = raw.pop("variants")
    seeds = a.seeds or raw.pop("seeds", [0])
    raw.pop("seeds", None)
    if a.only:
        missing = set(a.only) - set(variants)
        if missing:
            raise SystemExit(f"{a.config}: no variant(s) {sorted(missing)}; known: {sorted(variants)}")
        variants = {k: v for k, v in variants.items() if k in a.only}
    prm_spec = raw.pop("prm", None)
    missing_prm = {k for k, v in variants.items() if v.get("prm_model") and not Path(v["prm_model"]).exists()}
    if missing_prm and prm_spec:  # train the experiment's PRM first (cached in prm.output_dir)
        base = load_pipeline_config(None, **{**raw, "methods": [], "base_policy": a.base_policy or raw.get("base_policy")})
        train_task_prm(base, TaskPRMConfig(**prm_spec))
        missing_prm = {k for k in missing_prm if not Path(variants[k]["prm_model"]).exists()}
    if missing_prm:  # no PRM and no recipe for one: run the other variants
        print(f"skipping {sorted(missing_prm)}: their prm_model does not exist")
        variants = {k: v for k, v in variants.items() if k not in missing_prm}
    cfg = load_pipeline_config(None, **{**raw, "methods": [], "output_dir": a.output_dir or raw.get("output_dir"),
                                        "base_policy": a.base_policy or raw.get("base_policy")})
    runs = run_variants(cfg, variants, seeds)
    text = f"seeds {seeds}\n\n{results_table(runs)}\n\n{mining_table(runs)}\n"
    print(text)
    out = Path(cfg.output_dir)
    tag = "-".join(str(s) for s in seeds)
    (out / f"results-seeds{tag}.md").write_text(text, encoding="utf-8")
    (out / f"results-seeds{tag}.json").write_text(json.dumps(runs, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
