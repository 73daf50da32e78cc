"""Why an arm of a rounds experiment moved (or did not): the measurements behind a null, per arm and round.

Read from what ``negrl.experiments.rounds`` left on disk (nothing is retrained), mean over seeds:

- ``sample acc`` / ``all-wrong``: accuracy of the arm's own samples that round and the share of pool prompts with no
  correct sample (where RFT has no signal);
- ``pool − held-out``: greedy accuracy on the training pool minus held-out (RestEM's overfitting: a growing gap);
- ``pit = oracle``: share of Monte-Carlo critical steps that are the first arithmetically wrong step (label noise;
  embedded arithmetic only);
- ``Δ log π chosen / rejected``: per-token log-probability change of the arm's DPO pairs from the policy that
  sampled them to the policy trained on them (both sides falling together: the squeezing effect).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from negrl.experiments.rounds import RoundsConfig, data_key
from negrl.io import is_complete, read_stage
from negrl.records import Problem, Rollout, StepLabels, Verdict


def _data_dir(cfg: RoundsConfig, seed: int, r: int, arm: str) -> Path:
    return Path(cfg.output_dir) / f"seed{seed}" / f"round{r}" / "data" / (data_key(cfg.arm_specs()[arm], r) or arm)


def data_shares(data_dir: Path) -> dict[str, float]:
    """Sample accuracy and the share of all-wrong prompts of one data directory."""
    rollouts = read_stage(data_dir / "rollouts", Rollout)
    ok = {v.rollout_id: v.correct for v in read_stage(data_dir / "verdicts", Verdict)}
    by: dict[str, list[bool]] = {}
    for r in rollouts:
        by.setdefault(r.problem_id, []).append(bool(ok.get(r.rollout_id)))
    return {"sample_acc": sum(map(sum, by.values())) / max(1, len(rollouts)),
            "all_wrong": sum(1 for v in by.values() if not any(v)) / max(1, len(by))}


def pit_oracle_agreement(data_dir: Path) -> float | None:
    """Share of Monte-Carlo critical steps equal to the oracle's first wrong step (embedded tasks only)."""
    from negrl.steps.judge import OracleJudge

    if not is_complete(data_dir / "step_labels"):
        return None
    labels = [sl for sl in read_stage(data_dir / "step_labels", StepLabels) if sl.first_error is not None]
    if not labels:
        return None
    problems = read_stage(data_dir / "problems", Problem)
    rollouts = {r.rollout_id: r for r in read_stage(data_dir / "rollouts", Rollout)}
    try:
        oracle = OracleJudge().label(problems, [rollouts[sl.rollout_id] for sl in labels], rule="lines")
    except (ValueError, KeyError):  # a task without an exact step checker
        return None
    return sum(o.first_error == sl.first_error for o, sl in zip(oracle, labels, strict=True)) / len(labels)


def pair_logp_shift(pairs_path: Path, before: str, after: str, limit: int = 256) -> dict[str, float] | None:
    """Mean per-token log-prob change of chosen and rejected sides from policy ``before`` to ``after``."""
    import json

    from negrl.completion_tokens import sequence_logps, tokenize_weighted
    from negrl.modeling import load_policy

    if not pairs_path.exists():
        return None
    pairs = [json.loads(line) for line in pairs_path.read_text(encoding="utf-8").splitlines()[:limit]]
    if not pairs or "rejected" not in pairs[0]:
        return None
    models = {name: load_policy(path) for name, path in (("before", before), ("after", after))}
    tok = models["before"][1]
    out: dict[str, float] = {}
    for side in ("chosen", "rejected"):
        rows = [tokenize_weighted(tok, p["prompt"], p[side], add_eos=bool(p.get(f"{side}_eos", side == "chosen")))
                for p in pairs]
        n_tokens = sum(sum(r["completion_mask"]) for r in rows)
        total = {name: sum(sequence_logps(m, rows, tok.pad_token_id)) for name, (m, _) in models.items()}
        out[side] = (total["after"] - total["before"]) / max(1, n_tokens)
    return out


def mechanism_rows(cfg: RoundsConfig, runs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (arm, round): the measurements of the module docstring, mean over seeds."""
    rows = []
    for arm, spec in cfg.arm_specs().items():
        for r in range(1, cfg.rounds + 1):
            vals: dict[str, list[float]] = {}
            for seed in sorted(runs):
                row = next((x for x in runs[seed]["arms"][arm] if x["round"] == r), None)
                if row is None:
                    continue
                d = _data_dir(cfg, seed, r, arm)
                for k, v in data_shares(d).items():
                    vals.setdefault(k, []).append(v)
                if "pool_greedy" in row:
                    vals.setdefault("gap", []).append(row["pool_greedy"] - row["greedy"])
                agree = pit_oracle_agreement(d) if spec.method not in ("rft", "outcome_dpo") else None
                if agree is not None:
                    vals.setdefault("pit_oracle", []).append(agree)
                if row.get("trained") and "dpo" in spec.method:
                    before = cfg.base_policy if r == 1 else _policy_before(runs[seed], arm, r)
                    shift = pair_logp_shift(d / "data" / f"{arm}.jsonl", before, row["model_dir"])
                    if shift:
                        vals.setdefault("d_chosen", []).append(shift["chosen"])
                        vals.setdefault("d_rejected", []).append(shift["rejected"])
            rows.append({"arm": arm, "round": r, **{k: sum(v) / len(v) for k, v in vals.items() if v}})
    return rows


def _policy_before(run: dict[str, Any], arm: str, r: int) -> str:
    prev = next(x for x in run["arms"][arm] if x["round"] == r - 1)
    return prev["model_dir"]


def mechanism_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per arm and round."""

    def f(row: dict[str, Any], key: str, scale: float = 100.0, fmt: str = "{:.1f}") -> str:
        return fmt.format(scale * row[key]) if key in row else "-"

    lines = ["| arm | round | sample acc % | all-wrong prompts % | pool − held-out (greedy, points) | pit = oracle % "
             "| Δ log π chosen / rejected (per token) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        shift = (f"{row['d_chosen']:+.3f} / {row['d_rejected']:+.3f}" if "d_chosen" in row else "-")
        lines.append(f"| {row['arm']} | {row['round']} | {f(row, 'sample_acc')} | {f(row, 'all_wrong')} | "
                     f"{f(row, 'gap', fmt='{:+.1f}')} | {f(row, 'pit_oracle')} | {shift} |")
    return "\n".join(lines)

