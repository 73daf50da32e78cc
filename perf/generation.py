"""Generation throughput of the Hugging Face backend: batched + length-bucketed vs one sequence at a time.

    .venv/bin/python perf/generation.py --quick            # < 1 min on 2 cores
    .venv/bin/python perf/generation.py --batch_sizes 16 64 256 1024 --n_prompts 1024 --repeats 3

A randomly initialised ~0.13M-parameter Llama (``build_tiny_llama(hidden_size=64, num_layers=2)``, the embedded
default's size) samples up to ``--max_new_tokens`` tokens for prompts of the arithmetic task through
``negrl.generation.generate_texts``. Tokens are counted from the generated texts (an untrained model may emit
``<eos>`` early, equally often in both modes). The baseline, measured in the same run, is the same call with
``batch_size=1`` on ``--n_sequential`` prompts. Each setting is timed ``--repeats`` times and the best time kept.
The last output line is one JSON object; ``batched_vs_sequential`` = best batched tokens/s ÷ sequential tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure(prompts: list[str], model, tokenizer, batch_size: int, max_new_tokens: int, repeats: int) -> dict:
    """Best-of-``repeats`` wall time of generating one sample per prompt; tokens/s and completions/s."""
    from negrl.generation import GenerationConfig, generate_texts

    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size, temperature=1.0, seed=0,
                           show_progress=False)  # fmt: skip
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        out = generate_texts(prompts, model, tokenizer, cfg)
        best = min(best, time.perf_counter() - start)
        tokens = sum(len(tokenizer(g.text, add_special_tokens=False)["input_ids"]) for g in out)
    return {"batch_size": batch_size, "prompts": len(prompts), "seconds": round(best, 4), "tokens": tokens,
            "tok_per_s": round(tokens / best, 1), "completions_per_s": round(len(prompts) / best, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in under a minute")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 64, 256, 512])
    parser.add_argument("--n_prompts", type=int, default=512)
    parser.add_argument("--n_sequential", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.n_prompts, args.n_sequential, args.max_new_tokens, args.repeats = [16, 64, 256], 256, 8, 32, 1
    torch.set_num_threads(args.threads)

    from negrl.modeling import build_tiny_llama, count_parameters
    from negrl.tasks import get_task
    from negrl.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    model = build_tiny_llama(hidden_size=64, num_layers=2, seed=0)
    problems = get_task("arithmetic", min_steps=2, max_steps=4, digits=2).generate_problems(args.n_prompts, seed=0)
    prompts = [p.prompt for p in problems]
    print(f"model: {count_parameters(model) / 1e6:.2f}M parameters; {len(prompts)} prompts; "
          f"max_new_tokens={args.max_new_tokens}; threads={args.threads}")  # fmt: skip
    measure(prompts[:8], model, tokenizer, 8, 4, 1)  # warm-up
    sequential = measure(prompts[: args.n_sequential], model, tokenizer, 1, args.max_new_tokens, args.repeats)
    batched = [measure(prompts, model, tokenizer, bs, args.max_new_tokens, args.repeats) for bs in args.batch_sizes]
    print("| mode | batch | prompts | seconds | tokens/s | completions/s | vs sequential |")
    print("|---|---|---|---|---|---|---|")
    for row in [sequential, *batched]:
        mode = "sequential" if row is sequential else "batched"
        ratio = row["tok_per_s"] / sequential["tok_per_s"]
        print(f"| {mode} | {row['batch_size']} | {row['prompts']} | {row['seconds']} | {row['tok_per_s']} | "
              f"{row['completions_per_s']} | {ratio:.1f}x |")  # fmt: skip
    best = max(batched, key=lambda r: r["tok_per_s"])
    print(json.dumps({
        "batched_vs_sequential": round(best["tok_per_s"] / sequential["tok_per_s"], 2),
        "best_batch_size": best["batch_size"], "sequential": sequential, "batched": batched,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
