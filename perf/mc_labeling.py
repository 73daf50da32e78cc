"""Monte-Carlo step-labelling throughput: ``negrl.steps.label_monte_carlo`` vs a naive loop, same run, same rollouts.

    python perf/mc_labeling.py --quick                      # < 1 min once a policy exists
    python perf/mc_labeling.py --policy runs/base/arithmetic --n-problems 128 --samples 8 --k 5

Both label the same wrong rollouts of a tiny policy on the arithmetic task (K continuations per step prefix, the
bare prompt included, the last step's value taken from the verdict):

- *naive*: one ``generate`` call (batch K) per prefix of each rollout, no deduplication;
- *negrl*: ``label_monte_carlo`` — identical prefixes deduplicated, all prefixes of a work unit in one batched,
  length-sorted ``generate_texts`` call (chunks of ``--batch-size``); optionally ``--early-stop``.

Printed: wall and CPU time, continuations generated and continuations/s of each, and ``speedup_vs_naive`` = naive
wall time / negrl wall time for labelling the same rollouts (the work saved by deduplication counts in the speedup);
``cpu_time_speedup`` is the same ratio in process CPU time (steadier on a shared machine). The last line is a JSON
object. The policy: ``--policy DIR``, else ``runs/base/arithmetic`` or ``runs/steps/base_policy`` if present,
else a 1–2-step policy trained here for ``--train-steps`` steps (noted in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


CANDIDATES = ("runs/base/arithmetic", "runs/steps/base_policy")


def _policy(args: argparse.Namespace):
    from negrl.modeling import build_tiny_llama, load_policy, save_policy
    from negrl.sft import NegrlSFTConfig, gold_dataset, train_sft
    from negrl.tasks import get_task
    from negrl.tokenizer import build_char_tokenizer

    for path in [args.policy] if args.policy else CANDIDATES:
        if path and (Path(path) / "config.json").exists():
            model, tok = load_policy(path, device="cpu")
            return model, tok, path, get_task("arithmetic")  # the default n3d2 task of the base policies
    task = get_task("arithmetic", min_steps=1, max_steps=2, digits=1, max_value=99)
    tok = build_char_tokenizer()
    model = build_tiny_llama(hidden_size=64, num_layers=2, num_heads=4, seed=0)
    train, _ = task.make_splits(2000, 64, seed=0)
    sft_args = NegrlSFTConfig(
        output_dir="runs/bench/mc_policy/trainer", learning_rate=3e-3, lr_scheduler_type="cosine", warmup_steps=20,
        per_device_train_batch_size=64, max_steps=args.train_steps, logging_steps=10_000, disable_tqdm=True, seed=0,
        completion_only_loss=True,
    )
    train_sft(model, tok, gold_dataset(train), sft_args)
    save_policy(model, tok, "runs/bench/mc_policy")
    model.eval()
    return model, tok, f"trained here ({args.train_steps} steps, n1-2d1)", task


def _naive(problems, items, model, tok, args) -> tuple[float, float, int]:
    """One generate call per prefix (batch K), no dedup; returns (wall seconds, CPU seconds, continuations)."""
    from negrl.generation import GenerationConfig, generate_texts
    from negrl.steps.segment import segment
    from negrl.verifiers import verify

    by_id = {p.problem_id: p for p in problems}
    start, cpu, n = time.perf_counter(), time.process_time(), 0
    for j, r in enumerate(items):
        p = by_id[r.problem_id]
        steps = segment(r.completion)
        for i, prefix in enumerate([""] + [r.completion[: s.end] for s in steps[:-1]]):
            cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.k, seed=j * 1000 + i,
                                   show_progress=False)
            conts = generate_texts([p.prompt + prefix] * args.k, model, tok, cfg)
            _ = [verify(p, prefix + c.text).correct for c in conts]
            n += len(conts)
    return time.perf_counter() - start, time.process_time() - cpu, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default=None, help="policy directory (default: see module docstring)")
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in < 1 min")
    parser.add_argument("--n-problems", type=int, default=128)
    parser.add_argument("--samples", type=int, default=8, help="rollouts per problem")
    parser.add_argument("--k", type=int, default=5, help="continuations per prefix")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--early-stop", action="store_true")
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n_problems, args.samples = 12, 4
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.steps.monte_carlo import MonteCarloConfig, hf_continue_fn, label_monte_carlo
    from negrl.verifiers import verify_rollouts

    model, tok, source, task = _policy(args)
    problems = task.generate_problems(args.n_problems, seed=10_000 + args.seed)
    gen = GenerationConfig(num_samples=args.samples, max_new_tokens=args.max_new_tokens, seed=args.seed,
                           show_progress=False)
    rollouts = generate_rollouts(problems, model, tok, gen)
    verdicts = verify_rollouts(problems, rollouts)
    wrong = [r for r, v in zip(rollouts, verdicts) if v.correct is False]
    print(f"policy: {source}; {len(rollouts)} rollouts, {len(wrong)} wrong (labelled); K={args.k}")

    cfg = MonteCarloConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           early_stop=args.early_stop, seed=args.seed, show_progress=False)
    inner = hf_continue_fn(model, tok, cfg)
    counted = [0]

    def counting(texts, seed):
        counted[0] += len(texts)
        return inner(texts, seed)

    start, cpu = time.perf_counter(), time.process_time()
    labels = label_monte_carlo(problems, rollouts, verdicts, config=cfg, continue_fn=counting)
    fast_s, fast_cpu = time.perf_counter() - start, time.process_time() - cpu
    naive_s, naive_cpu, naive_n = _naive(problems, wrong, model, tok, args)

    rows = [("naive (1 generate / prefix)", naive_s, naive_cpu, naive_n),
            ("negrl label_monte_carlo", fast_s, fast_cpu, counted[0])]
    print(f"{'method':30s} {'wall s':>8s} {'CPU s':>8s} {'continuations':>14s} {'cont/s':>8s}")
    for name, secs, cpu_s, n in rows:
        print(f"{name:30s} {secs:8.2f} {cpu_s:8.2f} {n:14d} {n / secs:8.1f}")
    mean_prefix = sum(lab.prefix_value or 0 for lab in labels) / max(1, len(labels))
    result = {
        "speedup_vs_naive": round(naive_s / fast_s, 2), "cpu_time_speedup": round(naive_cpu / fast_cpu, 2),
        "naive_seconds": round(naive_s, 2), "negrl_seconds": round(fast_s, 2),
        "naive_continuations": naive_n, "negrl_continuations": counted[0],
        "naive_cont_per_s": round(naive_n / naive_s, 1), "negrl_cont_per_s": round(counted[0] / fast_s, 1),
        "effective_cont_per_s": round(naive_n / fast_s, 1), "wrong_rollouts": len(wrong), "k": args.k,
        "early_stop": args.early_stop, "mean_prefix_value": round(mean_prefix, 3), "policy": source,
        "threads": args.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
