"""GPU check: every trainer for a few LoRA steps (bf16 where the GPU supports it), HF generation and Monte-Carlo
labelling on a tiny model — one JSON line of timings and checks.

    python perf/gpu_check.py               # on a CUDA machine; exit status 1 if any check fails
    python perf/gpu_check.py --allow-cpu   # the same on the CPU (fp32): a smoke test of the script itself

Needs torch, transformers, trl, peft, datasets (a GPU machine without trl / datasets: install their wheels first).
Checks per trainer: the loss is finite, the LoRA weights changed, the model sits on the device, the config's bf16 is
what the device supports; for generation: completions on the device's model, token ids kept; for Monte-Carlo
labelling: one label per wrong rollout, values in {0, 1, None}, a pit on every wrong rollout that has a step.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}


def _lora_state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu().clone() for k, v in model.named_parameters() if "lora_" in k}


def _trained(trainer: Any, before: dict[str, torch.Tensor], device: str) -> dict[str, bool]:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    after = _lora_state(trainer.model)
    return {
        "loss_finite": bool(losses) and all(math.isfinite(x) for x in losses),
        "lora_changed": any(not torch.equal(before[k], after[k]) for k in before),
        "on_device": next(trainer.model.parameters()).device.type == device,
    }


def _run(name: str, fn: Any, timings: dict[str, float], checks: dict[str, Any]) -> None:
    start = time.perf_counter()
    try:
        checks[name] = fn()
    except Exception as err:  # a failing stage is a failed check, the others still run
        checks[name] = {"error": f"{type(err).__name__}: {err}"[:300]}
    timings[name] = round(time.perf_counter() - start, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU when no GPU is visible")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per trainer")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.allow_cpu:
        print(json.dumps({"ok": False, "error": "no CUDA device (use --allow-cpu for a CPU smoke test)"}))
        return 1

    from datasets import Dataset
    from peft import LoraConfig

    from negrl.generation import GenerationConfig, generate_rollouts
    from negrl.modeling import build_tiny_llama
    from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft
    from negrl.steps.monte_carlo import MonteCarloConfig, MonteCarloStats, label_monte_carlo
    from negrl.tasks import get_task
    from negrl.tokenizer import build_char_tokenizer
    from negrl.trainer_defaults import bf16_supported
    from negrl.trainers.awr import AWRConfig, AWRTrainer
    from negrl.trainers.bcpg_nsa import BCPGNSAConfig, BCPGNSATrainer
    from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer
    from negrl.verifiers import verify_rollouts

    tok = build_char_tokenizer()
    task = get_task("arithmetic", min_steps=1, max_steps=2, digits=1, max_value=99)
    train, test = task.make_splits(256, 32, seed=0)
    out = Path(tempfile.mkdtemp(prefix="negrl_gpu_check_"))
    common = {"per_device_train_batch_size": 8, "max_steps": args.steps, "learning_rate": 5e-3, "logging_steps": 1,
              "disable_tqdm": True, "seed": 0, "report_to": [], "save_strategy": "no"}

    def model() -> Any:  # head_dim 64: every attention kernel accepts it
        return build_tiny_llama(hidden_size=128, num_layers=2, num_heads=2, seed=0).to(device)

    timings: dict[str, float] = {}
    checks: dict[str, Any] = {}
    pairs = Dataset.from_dict({"prompt": ["Q: (2+3)*4\n"] * 16, "chosen": ["2+3=5\n5*4=20\nAnswer: 20"] * 16,
                               "rejected": ["2+3=5\n5*4=25\n"] * 16, "chosen_eos": [True] * 16,
                               "rejected_eos": [False] * 16})  # fmt: skip
    awr_rows = Dataset.from_dict({"prompt": ["Q: 1+2\n"] * 16, "completion": ["1+2=3\nAnswer: 3", "1+2=4\n"] * 8,
                                  "spans": [[[0, 6, 0.5]], [[0, 6, -1.0]]] * 8, "add_eos": [True, False] * 8})
    bcpg_rows = Dataset.from_list([{"prompt": "Q: 1+1\n", "completion": c, "advantage": a, "ref_logp": -5.0}
                                   for c, a in [("1+1=2\nAnswer: 2", 0.5), ("1+1=3\nAnswer: 3", -0.5)] * 8])

    def sft() -> dict[str, Any]:
        cfg = cpu_safe_sft_config(output_dir=str(out / "sft"), **common)
        m = model()
        from peft import get_peft_model

        m = get_peft_model(m, LoraConfig(**LORA))
        before = _lora_state(m)
        trainer = train_sft(m, tok, gold_dataset(train), cfg)
        return {**_trained(trainer, before, device), "bf16": cfg.bf16 == bf16_supported()}

    def trainer_check(cls: Any, cfg_cls: Any, rows: Any, sub: str) -> dict[str, Any]:
        cfg = cfg_cls(output_dir=str(out / sub), **common)
        trainer = cls(model=model(), args=cfg, train_dataset=rows, processing_class=tok,
                      peft_config=LoraConfig(**LORA))  # fmt: skip
        before = _lora_state(trainer.model)
        trainer.train()
        return {**_trained(trainer, before, device), "bf16": cfg.bf16 == bf16_supported()}

    _run("sft", sft, timings, checks)
    _run("step_dpo", lambda: trainer_check(StepDPOTrainer, StepDPOConfig, pairs, "dpo"), timings, checks)
    _run("awr", lambda: trainer_check(AWRTrainer, AWRConfig, awr_rows, "awr"), timings, checks)
    _run("bcpg_nsa", lambda: trainer_check(BCPGNSATrainer, BCPGNSAConfig, bcpg_rows, "bcpg"), timings, checks)

    state: dict[str, Any] = {}

    def generation() -> dict[str, Any]:
        policy = model().eval()
        gen = GenerationConfig(num_samples=4, max_new_tokens=24, seed=0, show_progress=False)
        rollouts = generate_rollouts(test, policy, tok, gen)
        state.update(policy=policy, rollouts=rollouts, verdicts=verify_rollouts(test, rollouts))
        return {"rollouts": len(rollouts) == 4 * len(test), "token_ids_kept": all(r.completion_ids for r in rollouts
                                                                                  if r.completion)}  # fmt: skip

    def monte_carlo() -> dict[str, Any]:
        wrong = sum(v.correct is False for v in state["verdicts"])
        stats = MonteCarloStats()
        labels = label_monte_carlo(test, state["rollouts"], state["verdicts"], state["policy"], tok,
                                   MonteCarloConfig(k=4, max_new_tokens=24, show_progress=False), stats=stats)
        return {"one_label_per_wrong_rollout": len(labels) == wrong,
                "values_in_0_1_none": all(v in (0.0, 1.0, None) for lab in labels for v in lab.values),
                "pit_on_every_wrong_rollout": all(lab.first_error is not None for lab in labels if lab.steps),
                "continuations": stats.continuations}  # fmt: skip

    _run("generation", generation, timings, checks)
    _run("monte_carlo", monte_carlo, timings, checks)
    ok = all(isinstance(c, dict) and "error" not in c and all(v for v in c.values() if isinstance(v, bool))
             for c in checks.values())  # fmt: skip
    print(json.dumps({
        "ok": ok, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__,
        "bf16": bf16_supported(), "steps": args.steps, "timings_s": timings, "checks": checks,
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
