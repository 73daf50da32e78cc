"""Label the steps of rollouts with one source (Monte-Carlo, PRM, LLM judge, oracle) or a consensus of sources.

Commands (inputs are stages written by the rollout / verify stages, e.g. ``runs/<run>/rollouts``):

    # Monte-Carlo values (K=5, best-of-K, first pit) with the base policy as rollout policy
    python recipes/label_steps.py --config recipes/configs/steps/mc_arithmetic.yaml \
        --set problems=runs/x/problems rollouts=runs/x/rollouts output_dir=runs/x/labels_mc

    # the same on several processes (units split with accelerate; one stage per process under output_dir/mc/)
    accelerate launch --num_processes 2 recipes/label_steps.py --config recipes/configs/steps/mc_arithmetic.yaml

    # a PRM saved by PRMScorer.save_pretrained, an LLM judge, the exact checker, or a consensus of label stages
    python recipes/label_steps.py --set source=prm prm_model=runs/steps/validate/prm problems=... rollouts=...
    python recipes/label_steps.py --set source=judge judge_model=smollm2 problems=... rollouts=...
    python recipes/label_steps.py --set source=oracle problems=... rollouts=...
    python recipes/label_steps.py --set source=consensus consensus_rule=and \
        "consensus_inputs=[runs/x/labels_mc/labels, runs/x/labels_judge/labels]" output_dir=runs/x/labels_and

Writes ``output_dir/labels`` (a StepLabels stage; an interrupted Monte-Carlo run resumes from ``output_dir/mc``) and
the resolved ``config.json``. Logic: ``negrl.experiments.label_steps``.
"""

import sys

from negrl.experiments.cli import cmd_label


def main(argv: list[str] | None = None) -> None:
    cmd_label(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
