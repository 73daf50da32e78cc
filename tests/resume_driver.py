"""Child process of ``tests/test_resume.py``: one short training run of a tiny model through a negrl entry point.

    python tests/resume_driver.py FAMILY OUTPUT_DIR WEIGHTS_FILE [--stop-after-save N] [--stall-in-save N]

FAMILY is ``sft`` (``negrl.sft.train_sft``), ``dpo`` (``StepDPOTrainer`` + LoRA, as ``negrl.experiments.pipeline`` trains the
DPO-type methods), ``bcpg`` (``negrl.trainers.bcpg_nsa.train_bcpg_nsa`` + LoRA), ``awr`` (``AWRTrainer``), ``prm``
(``negrl.steps.prm.train_prm`` + LoRA) or ``likra`` (``negrl.likra.heads``: both heads, one after the other). The
run uses negrl's default checkpoint settings (a checkpoint each tenth of the run, two kept). At the end the model's
whole state dict is saved to WEIGHTS_FILE.

Each optimizer step trained is appended to ``OUTPUT_DIR/steps`` (its 1-based global step), so a test can tell a
resumed run from one that started over. ``--stop-after-save N`` makes the process write ``OUTPUT_DIR/stopped`` after its N-th checkpoint is fully saved and
then sleep, so the test can SIGKILL it at a known point; ``--stall-in-save N`` does the same *inside* the N-th save,
after the weights are written but before ``trainer_state.json`` (a kill in the middle of saving). The hooks only
wait; they change no weights, RNG state or data order.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
import transformers


torch.set_num_threads(1)
MAX_STEPS = 10  # 16 rows, batch 4: 4 steps per epoch, so a kill at step 6 resumes in the middle of epoch 2
COMMON: dict[str, Any] = {"max_steps": MAX_STEPS, "per_device_train_batch_size": 4, "learning_rate": 1e-2,
                          "logging_steps": 1, "disable_tqdm": True, "report_to": "none", "seed": 0,
                          "lr_scheduler_type": "cosine", "warmup_steps": 2}


def install_kill_points(out: Path, stop_after: int | None, stall_in: int | None) -> None:
    saves = {"n": 0}
    original_save = transformers.Trainer._save_checkpoint
    original_rng = transformers.Trainer._save_rng_state

    def wait_forever() -> None:
        rank = os.environ.get("RANK", "0")  # under torchrun each process parks and says so
        (out / ("stopped" if rank == "0" else f"stopped-{rank}")).write_text(str(saves["n"]))
        while True:
            time.sleep(60)

    def save_checkpoint(self: Any, model: Any, trial: Any) -> None:
        saves["n"] += 1
        original_save(self, model, trial)
        if saves["n"] == stop_after:
            wait_forever()

    def save_rng_state(self: Any, output_dir: str) -> None:
        if saves["n"] == stall_in:  # weights and optimizer written, RNG state and trainer_state.json not yet
            wait_forever()
        original_rng(self, output_dir)

    transformers.Trainer._save_checkpoint = save_checkpoint
    transformers.Trainer._save_rng_state = save_rng_state


def count_steps(out: Path) -> None:
    """Append to ``OUTPUT_DIR/steps`` one line per optimizer step this process trains (a resumed run trains fewer)."""
    original = transformers.Trainer.training_step

    def training_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        with open(out / "steps", "a") as f:
            f.write(f"{self.state.global_step + 1}\n")
        return original(self, *args, **kwargs)

    transformers.Trainer.training_step = training_step


def tiny_model() -> Any:
    from negrl.modeling import build_tiny_llama

    return build_tiny_llama(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)


def problems() -> list[Any]:
    from negrl.tasks import get_task

    return get_task("arithmetic", min_steps=1, max_steps=2, digits=1, max_value=99).generate_problems(16, seed=0)


def lora(task_type: str = "CAUSAL_LM") -> Any:
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type=task_type)


def wrong(p: Any) -> str:
    return p.solution.rsplit("Answer: ", 1)[0] + f"Answer: {int(p.answer) + 1}"


def run(family: str, out: Path, tokenizer: Any) -> Any:
    """Train through the family's entry point; returns the trained model."""
    from datasets import Dataset

    probs = problems()
    if family == "sft":
        from negrl.sft import cpu_safe_sft_config, gold_dataset, train_sft

        model = tiny_model()
        train_sft(model, tokenizer, gold_dataset(probs), cpu_safe_sft_config(output_dir=str(out), **COMMON))
        return model
    if family == "dpo":
        from negrl.trainers.resume import train_resuming
        from negrl.trainers.step_dpo import StepDPOConfig, StepDPOTrainer

        rows = Dataset.from_dict({"prompt": [p.prompt for p in probs], "chosen": [p.solution for p in probs],
                                  "rejected": [wrong(p) for p in probs]})
        args = StepDPOConfig(output_dir=str(out), beta=0.3, rpo_alpha=1.0, max_length=128, **COMMON)
        trainer = StepDPOTrainer(model=tiny_model(), args=args, train_dataset=rows, processing_class=tokenizer,
                                 peft_config=lora())
        train_resuming(trainer)
        return trainer.model
    if family in ("bcpg", "awr"):
        texts = [p.solution if i % 2 else wrong(p) for i, p in enumerate(probs)]
        adv = [0.5 if i % 2 else -0.5 for i in range(len(probs))]
        rows = Dataset.from_dict({"prompt": [p.prompt for p in probs], "completion": texts, "advantage": adv,
                                  "ref_logp": [-20.0] * len(probs)})
        if family == "bcpg":
            from negrl.trainers.bcpg_nsa import BCPGNSAConfig, train_bcpg_nsa

            args = BCPGNSAConfig(output_dir=str(out), max_length=128, **COMMON)
            return train_bcpg_nsa(tiny_model(), tokenizer, rows, args, peft_config=lora()).model
        from negrl.trainers.awr import AWRConfig, AWRTrainer
        from negrl.trainers.resume import train_resuming

        tokenizer.padding_side = "right"
        trainer = AWRTrainer(model=tiny_model(), args=AWRConfig(output_dir=str(out), max_length=128, **COMMON),
                             train_dataset=rows.remove_columns(["ref_logp"]), processing_class=tokenizer)
        train_resuming(trainer)
        return trainer.model
    if family == "prm":
        from negrl.steps.prm import PRMConfig, train_prm

        rows = [{"prompt": p.prompt, "completions": [line + "\n" for line in p.solution.split("\n")],
                 "labels": [i % 2 == 0] * len(p.solution.split("\n"))} for i, p in enumerate(probs)]
        trainer = train_prm(tiny_model(), tokenizer, rows, PRMConfig(output_dir=str(out), **COMMON),
                            peft_config=lora())
        return trainer.model
    if family == "likra":
        from negrl.likra.heads import LikraConfig, attach_heads, train_head

        cfg = LikraConfig(r=4, lora_alpha=8, batch_size=4, num_epochs=2.5, seed=0, max_length=128,
                          min_checkpoint_examples=1_000_000)
        model = attach_heads(tiny_model(), cfg)
        prompts = [p.prompt for p in probs]
        train_head(model, tokenizer, "pos", prompts, [p.solution for p in probs], cfg, out, logging_steps=1,
                   disable_tqdm=True)
        train_head(model, tokenizer, "neg", prompts, [wrong(p) for p in probs], cfg, out, logging_steps=1,
                   disable_tqdm=True)
        return model
    raise ValueError(f"unknown family {family!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("family")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--stop-after-save", type=int)
    parser.add_argument("--stall-in-save", type=int)
    parser.add_argument("--resume", help="resume_from_checkpoint value (default: unset, i.e. the last checkpoint)")
    parser.add_argument("--learning-rate", type=float, help="another learning rate than the default 1e-2")
    parser.add_argument("--grad-accum", type=int, help="gradient accumulation steps (default 1)")
    ns = parser.parse_args()
    ns.output_dir.mkdir(parents=True, exist_ok=True)
    install_kill_points(ns.output_dir, ns.stop_after_save, ns.stall_in_save)
    count_steps(ns.output_dir)
    if ns.grad_accum is not None:
        COMMON.update(gradient_accumulation_steps=ns.grad_accum, per_device_train_batch_size=2)  # same 4 rows/step
    if ns.learning_rate is not None:
        COMMON["learning_rate"] = ns.learning_rate
    if ns.resume is not None:
        COMMON["resume_from_checkpoint"] = ns.resume
    from negrl.tokenizer import build_char_tokenizer

    model = run(ns.family, ns.output_dir, build_char_tokenizer())
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process holds the same weights
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, ns.weights)


if __name__ == "__main__":
    main()
