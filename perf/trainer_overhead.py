"""Training-step overhead of negrl's trainers against the TRL trainer they extend, measured in the same run.

    .venv/bin/python perf/trainer_overhead.py --quick          # < 1 min on 2 cores
    .venv/bin/python perf/trainer_overhead.py --only step_dpo_vs_trl_dpo --steps 60 --repeats 3

Each measurement in ``MEASUREMENTS`` (key → function) builds both trainers on *identical* token batches and the same
freshly initialised tiny model + LoRA, then times single optimizer steps (forward, backward, update) of the two
trainers *interleaved* — ours, theirs, theirs, ours, ... — so that load drift on a shared machine hits both alike;
the first ``--warmup`` steps of each of the ``--repeats`` passes are discarded. It returns the ratio of median step
times (negrl / TRL; 1.00 = no overhead). The last output line is one JSON object
``{key: ratio, ...}``. Add a measurement with ``@register("key")``.

- ``step_dpo_vs_trl_dpo``: ``StepDPOTrainer`` vs TRL's ``DPOTrainer`` (target <= 1.05x). Both sides' pairs end in
  EOS, so TRL's own tokenisation gives the same ids as ``StepDPOTrainer``'s.
- ``bcpg_vs_trl_sft``: ``BCPGNSATrainer`` vs TRL's ``SFTTrainer`` (target <= 1.2x), both fed the same pre-tokenised
  ids (SFT with ``completion_mask``; BCPG adds token weights, advantages and behaviour log-probs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

Measurement = Callable[[argparse.Namespace], float]
MEASUREMENTS: dict[str, Measurement] = {}


def register(key: str) -> Callable[[Measurement], Measurement]:
    def wrap(fn: Measurement) -> Measurement:
        MEASUREMENTS[key] = fn
        return fn

    return wrap


def _timed_step(trainer: Any, batch: dict[str, Any]) -> float:
    """One optimizer step (forward, backward, update) of ``trainer`` on ``batch``; returns its wall time."""
    t0 = time.perf_counter()
    trainer.training_step(trainer.model, batch)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def paired_step_times(ours: Any, theirs: Any, n: int) -> tuple[list[float], list[float]]:
    """Alternate single optimizer steps of both trainers (who goes first alternates too), so machine-load drift
    hits both equally; each trainer uses its own dataloader's batches (the caller checks they hold the same ids)."""
    times: dict[int, list[float]] = {0: [], 1: []}
    iters = []
    for tr in (ours, theirs):
        tr.model.train()
        tr.create_optimizer_and_scheduler(num_training_steps=n)
        tr.current_gradient_accumulation_steps = 1  # set by Trainer's train loop, which is bypassed here
        iters.append(iter(tr.get_train_dataloader()))
    for i in range(n):
        batches = [next(it) for it in iters]
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            times[j].append(_timed_step((ours, theirs)[j], batches[j]))
    return times[0], times[1]


def compare(make_ours: Callable[[], Any], make_theirs: Callable[[], Any], args: argparse.Namespace, key: str) -> float:
    """Median step time of ours / theirs over ``args.repeats`` passes of interleaved steps (first ``args.warmup``
    steps of each pass discarded); prints the medians and returns the ratio."""
    ours_t, theirs_t = [], []
    for _ in range(args.repeats):
        o, t = paired_step_times(make_ours(), make_theirs(), args.steps + args.warmup)
        ours_t += o[args.warmup :]
        theirs_t += t[args.warmup :]
    o_med, t_med = statistics.median(ours_t), statistics.median(theirs_t)
    print(f"{key}: negrl {o_med * 1e3:.2f} ms/step, TRL {t_med * 1e3:.2f} ms/step, ratio {o_med / t_med:.3f} "
          f"({len(ours_t)} interleaved steps each)")
    return o_med / t_med


def tiny_policy_and_lora(seed: int = 0) -> tuple[Any, Any, Any]:
    """The embedded 0.13M demo-size policy, its char tokenizer and a LoRA config (all-linear, r 16)."""
    from peft import LoraConfig

    from negrl.modeling import build_tiny_llama
    from negrl.tokenizer import build_char_tokenizer

    model = build_tiny_llama(hidden_size=64, num_layers=2, num_heads=4, seed=seed)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return model, build_char_tokenizer(), lora


def arithmetic_pairs(n: int) -> Any:
    """``n`` preference rows from the arithmetic task: gold solution vs a wrong final answer (both end the solution)."""
    from datasets import Dataset

    from negrl.tasks import get_task

    problems = get_task("arithmetic").generate_problems(n, seed=0)
    chosen = [p.solution for p in problems]
    rejected = [p.solution.rsplit("Answer: ", 1)[0] + f"Answer: {int(p.answer) + 1}" for p in problems]
    return Dataset.from_dict({"prompt": [p.prompt for p in problems], "chosen": chosen, "rejected": rejected,
                              "chosen_eos": [True] * n, "rejected_eos": [True] * n})


@register("step_dpo_vs_trl_dpo")
def step_dpo_vs_trl_dpo(args: argparse.Namespace) -> float:
    from trl import DPOConfig, DPOTrainer

    from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer

    batch = 16
    data = arithmetic_pairs(batch * (args.steps + args.warmup))
    common = dict(output_dir="/tmp/negrl-bench-dpo", per_device_train_batch_size=batch, max_steps=args.steps + args.warmup,
                  learning_rate=1e-4, beta=0.1, logging_steps=10_000, report_to="none", save_strategy="no",
                  disable_tqdm=True, bf16=False, use_cpu=True, activation_checkpointing=False, seed=0,
                  dataloader_num_workers=0)

    def ours() -> Any:
        model, tok, lora = tiny_policy_and_lora()
        return StepDPOTrainer(model=model, args=StepDPOConfig(**common), train_dataset=data, processing_class=tok,
                              peft_config=lora)

    def theirs() -> Any:
        model, tok, lora = tiny_policy_and_lora()
        trl_data = data.remove_columns(["chosen_eos", "rejected_eos"])
        return DPOTrainer(model=model, args=DPOConfig(**common), train_dataset=trl_data, processing_class=tok,
                          peft_config=lora)

    check_identical_batches(ours(), theirs())
    return compare(ours, theirs, args, "step_dpo_vs_trl_dpo")


def check_identical_batches(ours: Any, theirs: Any) -> None:
    """Both trainers must see the same token ids, or the timing compares different work."""
    for col in ("prompt_ids", "chosen_ids", "rejected_ids"):
        if ours.train_dataset[col] != theirs.train_dataset[col]:
            raise AssertionError(f"benchmark batches differ in {col}")


@register("bcpg_vs_trl_sft")
def bcpg_vs_trl_sft(args: argparse.Namespace) -> float:
    """``BCPGNSATrainer`` vs TRL's ``SFTTrainer`` (target <= 1.2x) on the same pre-tokenised prompt/completion ids."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from negrl.tasks import get_task
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer
    from negrl.trainers.weighted import tokenize_weighted

    batch = 16
    n = batch * (args.steps + args.warmup)
    _, tok, _ = tiny_policy_and_lora()
    problems = get_task("arithmetic").generate_problems(n, seed=0)
    rows = [tokenize_weighted(tok, p.prompt, p.solution, spans=[(0, 6, 0.5)]) for p in problems]
    bcpg_data = Dataset.from_dict({**{k: [r[k] for r in rows] for k in rows[0]},
                                   "advantage": [0.5 if i % 2 else -0.5 for i in range(n)], "ref_logp": [-20.0] * n})
    sft_data = bcpg_data.select_columns(["input_ids", "completion_mask"])
    common = dict(output_dir="/tmp/negrl-bench-bcpg", per_device_train_batch_size=batch,
                  max_steps=args.steps + args.warmup, learning_rate=1e-4, logging_steps=10_000, report_to="none",
                  save_strategy="no", disable_tqdm=True, bf16=False, use_cpu=True, activation_checkpointing=False,
                  seed=0, dataloader_num_workers=0)

    def ours() -> Any:
        model, tok, lora = tiny_policy_and_lora()
        return BCPGNSATrainer(model, BCPGNSAConfig(**common), train_dataset=bcpg_data, processing_class=tok,
                              peft_config=lora)

    def theirs() -> Any:
        model, tok, lora = tiny_policy_and_lora()
        tok.padding_side = "right"
        cfg = SFTConfig(**common, completion_only_loss=True, max_length=None, dataset_num_proc=None)
        return SFTTrainer(model=model, args=cfg, train_dataset=sft_data, processing_class=tok, peft_config=lora)

    if ours().train_dataset["input_ids"] != theirs().train_dataset["input_ids"]:
        raise AssertionError("benchmark batches differ in input_ids")
    return compare(ours, theirs, args, "bcpg_vs_trl_sft")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps and repeats (< 1 min)")
    parser.add_argument("--only", nargs="*", choices=sorted(MEASUREMENTS), help="run only these measurements")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per trainer")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = min(args.steps, 15), min(args.repeats, 2)
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    results = {key: round(fn(args), 4) for key, fn in MEASUREMENTS.items() if not args.only or key in args.only}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
