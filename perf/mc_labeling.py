"""Monte-Carlo step-labelling cost: ``negrl.steps.label_monte_carlo``, switch by switch, vs a naive loop, same run.

    python perf/mc_labeling.py --quick                              # ~1 min once a policy exists
    python perf/mc_labeling.py --n-problems 32 --samples 4          # the figure quoted in the README
    python perf/mc_labeling.py --chain-table                        # cost as the chain grows (3, 6, 12 steps)

Every variant labels the same wrong rollouts of one tiny policy on the arithmetic task (K continuations per step
prefix, the bare prompt included, the last step's value taken from the verdict):

- *naive*: one ``generate`` call (batch K) per prefix of each rollout, no deduplication, all K, every prefix;
- *batched*: ``label_monte_carlo`` as first written — prefixes deduplicated, one length-sorted call per unit, all K;
- *+ early stop*: depth by depth, no prefix after the first zero (the recipes' setting until now);
- *+ first success*, *+ certificates*, *+ shared prefill*: the exact economies, added one at a time — the last row
  is negrl's default;
- *binary search*: the default with ``search="binary"`` (approximate: assumes values never recover after a zero).

Printed per variant: wall and CPU seconds, continuations sampled, generated tokens and model forward tokens (prefill
+ decode positions) per labelled negative — counts that do not depend on the machine — and the first-error
agreement with the task's exact step checker. ``cont_per_s_vs_plain`` compares each variant's continuations/s with
plain batched sampling of fresh completions by the same model at the same batch size, measured in the same run.
``speedup_vs_naive`` = naive wall time / default wall time (``cpu_time_speedup``: the same in process CPU time, steadier
on a shared machine). The last line is a JSON object. The policy: ``--policy DIR``, else ``runs/base/arithmetic`` if
present, else a small policy trained here (cached under ``runs/bench/``; noted in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch


VARIANTS = [  # (name, MonteCarloConfig overrides on top of the defaults)
    ("batched (all K, every prefix)", {"early_stop": False, "stop_at_success": False, "reuse_rollouts": False,
                                       "share_prefill": False}),
    ("+ early stop", {"stop_at_success": False, "reuse_rollouts": False, "share_prefill": False}),
    ("+ first success", {"reuse_rollouts": False, "share_prefill": False}),
    ("+ certificates", {"share_prefill": False}),
    ("+ shared prefill = default", {}),
    ("binary search", {"search": "binary"}),
]


def _policy(policy: str | None, task_kwargs: dict, train_steps: int, name: str, candidates: tuple[str, ...] = ()):
    """``policy``, else the first existing candidate directory, else a policy trained here on ``task_kwargs``
    problems (cached under runs/bench/NAME)."""
    from negrl.modeling import build_tiny_llama, load_policy, save_policy
    from negrl.sft import NegrlSFTConfig, gold_dataset, train_sft
    from negrl.tasks import get_task
    from negrl.tokenizer import build_char_tokenizer

    out = Path("runs/bench") / name
    for path in [policy] if policy else [*candidates, str(out)]:
        if path and (Path(path) / "config.json").exists():
            return load_policy(path, device="cpu")[0:2] + (path,)
    task = get_task("arithmetic", **task_kwargs)
    tok = build_char_tokenizer()
    model = build_tiny_llama(hidden_size=64, num_layers=2, num_heads=4, seed=0)
    train, _ = task.make_splits(3000, 64, seed=0)
    args = NegrlSFTConfig(
        output_dir=str(out / "trainer"), learning_rate=3e-3, lr_scheduler_type="cosine", warmup_steps=20,
        per_device_train_batch_size=64, max_steps=train_steps, logging_steps=10_000, disable_tqdm=True, seed=0,
        completion_only_loss=True, save_strategy="no",
    )
    train_sft(model, tok, gold_dataset(train), args)
    save_policy(model, tok, out)
    model.eval()
    return model, tok, f"trained here ({train_steps} steps on {task_kwargs})"


def _naive(problems, wrong, model, tok, k: int, max_new_tokens: int):
    """One generate call per prefix (batch K), no dedup; returns (wall s, CPU s, GenerationStats, first errors)."""
    from negrl.generation import GenerationConfig, GenerationStats, generate_samples
    from negrl.steps.monte_carlo import MonteCarloConfig, estimate_value, find_pit
    from negrl.steps.segment import segment
    from negrl.verifiers import verify

    by_id = {p.problem_id: p for p in problems}
    stats, pits = GenerationStats(), {}
    start, cpu = time.perf_counter(), time.process_time()
    for j, r in enumerate(wrong):
        p = by_id[r.problem_id]
        steps = segment(r.completion)
        values = []
        for i, prefix in enumerate([""] + [r.completion[: s.end] for s in steps[:-1]]):
            cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=k, seed=j * 1000 + i, show_progress=False)
            (conts,) = generate_samples([p.prompt + prefix], [k], model, tok, cfg, share_prefill=False, stats=stats)
            values.append(estimate_value([verify(p, prefix + c.text).correct for c in conts], MonteCarloConfig(k=k)))
        pits[r.rollout_id] = find_pit(values[1:] + [0.0])
    return time.perf_counter() - start, time.process_time() - cpu, stats, pits


def _plain_rate(problems, model, tok, n: int, batch_size: int, max_new_tokens: int) -> tuple[float, float]:
    """Sequences/s and generated tokens/s of plain batched sampling of fresh completions (the ceiling)."""
    from negrl.generation import GenerationConfig, GenerationStats, generate_samples

    prompts = [problems[i % len(problems)].prompt for i in range(n)]
    stats = GenerationStats()
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=123, show_progress=False)
    start = time.perf_counter()
    generate_samples(prompts, [1] * n, model, tok, cfg, share_prefill=False, stats=stats)
    secs = time.perf_counter() - start
    return n / secs, stats.generated_tokens / secs


def _agreement(problems, wrong, pits) -> float:
    from negrl.tasks import first_error

    by_id = {p.problem_id: p for p in problems}
    return sum(pits.get(r.rollout_id) == first_error(by_id[r.problem_id], r.completion) for r in wrong) / len(wrong)


def measure(model, tok, task, args, variants=VARIANTS, naive: bool = True) -> dict:
    """Label one set of rollouts with every variant (and the naive loop); a dict of rows and the headline figures."""
    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.steps.monte_carlo import MonteCarloConfig, MonteCarloStats, label_monte_carlo
    from negrl.verifiers import verify_rollouts

    problems = task.generate_problems(args.n_problems, seed=10_000 + args.seed)
    gen = GenerationConfig(num_samples=args.samples, max_new_tokens=args.max_new_tokens, seed=args.seed,
                           show_progress=False)  # fmt: skip
    rollouts = generate_rollouts(problems, model, tok, gen)
    verdicts = verify_rollouts(problems, rollouts)
    wrong = [r for r, v in zip(rollouts, verdicts) if v.correct is False]
    base = MonteCarloConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed,
                            show_progress=False)  # fmt: skip
    plain_seq_s, plain_tok_s = _plain_rate(problems, model, tok, 512, args.batch_size, args.max_new_tokens)
    rows = []
    for name, overrides in variants:
        stats = MonteCarloStats()
        start, cpu = time.perf_counter(), time.process_time()
        labels = label_monte_carlo(problems, rollouts, verdicts, model, tok, replace(base, **overrides), stats=stats)
        secs, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        g = stats.generation
        rows.append({
            "variant": name, "wall_s": secs, "cpu_s": cpu_s, "continuations": stats.continuations,
            "certified": stats.certified, "gen_tok_per_neg": g.generated_tokens / len(wrong),
            "fwd_tok_per_neg": g.forward_tokens / len(wrong), "neg_per_s": len(wrong) / secs,
            "passes": g.forward_passes, "cont_per_s_vs_plain": (stats.continuations / secs) / plain_seq_s,
            "tok_per_s_vs_plain": (g.generated_tokens / secs) / plain_tok_s,
            "agreement": _agreement(problems, wrong, {lab.rollout_id: lab.first_error for lab in labels}),
        })
    if naive:
        secs, cpu_s, g, pits = _naive(problems, wrong, model, tok, args.k, args.max_new_tokens)
        rows.insert(0, {
            "variant": "naive (1 generate / prefix)", "wall_s": secs, "cpu_s": cpu_s, "continuations": g.sequences,
            "certified": 0, "gen_tok_per_neg": g.generated_tokens / len(wrong),
            "fwd_tok_per_neg": g.forward_tokens / len(wrong), "neg_per_s": len(wrong) / secs,
            "passes": g.forward_passes, "cont_per_s_vs_plain": (g.sequences / secs) / plain_seq_s,
            "tok_per_s_vs_plain": (g.generated_tokens / secs) / plain_tok_s,
            "agreement": _agreement(problems, wrong, pits),
        })
    return {"rows": rows, "rollouts": len(rollouts), "wrong": len(wrong)}


def _print_rows(rows: list[dict]) -> None:
    head = (f"{'variant':30s} {'wall s':>7s} {'CPU s':>7s} {'conts':>7s} {'gen tok/neg':>11s} {'fwd tok/neg':>11s}"
            f" {'passes':>6s} {'neg/s':>7s} {'cont/s vs plain':>15s} {'first-error agree':>17s}")  # fmt: skip
    print(head)
    for r in rows:
        print(f"{r['variant']:30s} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} {r['continuations']:7d} "
              f"{r['gen_tok_per_neg']:11.1f} {r['fwd_tok_per_neg']:11.1f} {r['passes']:6d} {r['neg_per_s']:7.1f} "
              f"{r['cont_per_s_vs_plain']:15.2f} {r['agreement']:17.3f}")  # fmt: skip


def chain_table(args) -> None:
    """Cost per labelled negative as the chain grows: naive, linear first-pit (default) and binary search."""
    from negrl.tasks import get_task

    model, tok, source = _policy(args.policy, {"min_steps": 2, "max_steps": 12, "digits": 1, "max_value": 99},
                                 args.train_steps * 6, "mc_chain_policy")  # fmt: skip
    print(f"policy: {source}")
    keep = {"+ shared prefill = default", "binary search"}
    out = {}
    for n_steps in (3, 6, 12):
        task = get_task("arithmetic", min_steps=n_steps, max_steps=n_steps, digits=1, max_value=99)
        args.max_new_tokens = 16 + 9 * n_steps
        res = measure(model, tok, task, args, [v for v in VARIANTS if v[0] in keep])
        print(f"\n{n_steps} steps: {res['rollouts']} rollouts, {res['wrong']} wrong")
        _print_rows(res["rows"])
        out[n_steps] = {r["variant"]: {k: round(r[k], 3) for k in ("neg_per_s", "gen_tok_per_neg", "fwd_tok_per_neg",
                                                                 "agreement")} for r in res["rows"]}  # fmt: skip
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default=None, help="policy directory (default: see module docstring)")
    parser.add_argument("--quick", action="store_true", help="small sizes: ~1 min")
    parser.add_argument("--chain-table", action="store_true", help="cost vs chain length (3, 6, 12 steps)")
    parser.add_argument("--n-problems", type=int, default=128)
    parser.add_argument("--samples", type=int, default=8, help="rollouts per problem")
    parser.add_argument("--k", type=int, default=5, help="continuations per prefix")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n_problems, args.samples = 12, 4
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.chain_table:
        if args.quick:
            args.n_problems = 8
        chain_table(args)
        return

    from negrl.tasks import get_task

    model, tok, source = _policy(args.policy, {"min_steps": 3, "max_steps": 3, "digits": 2, "max_value": 999},
                                 args.train_steps, "mc_policy", ("runs/base/arithmetic",))  # fmt: skip
    task = get_task("arithmetic")  # n3d2, the task of the base policies
    res = measure(model, tok, task, args)
    rows = {r["variant"]: r for r in res["rows"]}
    print(f"policy: {source}; {res['rollouts']} rollouts, {res['wrong']} wrong (labelled); K={args.k}")
    _print_rows(res["rows"])
    naive, default, today = rows["naive (1 generate / prefix)"], rows["+ shared prefill = default"], rows["+ early stop"]
    result = {
        "speedup_vs_naive": round(naive["wall_s"] / default["wall_s"], 2),
        "cpu_time_speedup": round(naive["cpu_s"] / default["cpu_s"], 2),
        "speedup_vs_previous": round(today["wall_s"] / default["wall_s"], 2),
        "gen_tokens_vs_naive": round(default["gen_tok_per_neg"] / naive["gen_tok_per_neg"], 4),
        "fwd_tokens_vs_naive": round(default["fwd_tok_per_neg"] / naive["fwd_tok_per_neg"], 4),
        "cont_per_s_vs_plain": round(default["cont_per_s_vs_plain"], 3),
        "tok_per_s_vs_plain": round(default["tok_per_s_vs_plain"], 3),
        "agreement_default": round(default["agreement"], 3), "agreement_naive": round(naive["agreement"], 3),
        "agreement_binary": round(rows["binary search"]["agreement"], 3),
        "wrong_rollouts": res["wrong"], "k": args.k, "policy": source, "threads": args.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
