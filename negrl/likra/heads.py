"""Likra's two heads: named LoRA adapters ``pos`` and ``neg`` on one frozen base, each trained by plain SFT.

Hamdan & Yuret 2025 (arXiv 2503.14391), reference code ``Shamdan17/likra`` (``hydratrainmcprep.py``): the positive
head maximises log p(correct answer | question), the negative head log p(incorrect answer | question). Each is an
ordinary one-epoch supervised run of TRL's ``SFTTrainer`` on the same ``PeftModel``: ``set_adapter(head)`` makes
only that adapter trainable, so the other head and the base stay frozen. Rows are tokenised here (prompt ids, then
answer ids; lm-eval's convention) so that the loss covers the answer tokens only and no EOS is appended — TRL's own
prompt-completion path would append one. Checkpoints are saved at power-of-two numbers of training examples, so one
run gives a learning curve (``checkpoints/n{N}/{head}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import TrainerCallback

from negrl.sft import cpu_safe_sft_config, train_sft


HEADS = ("pos", "neg")


@dataclass
class LikraConfig:
    """Hyper-parameters of the two heads (both heads use the same ones, as in the paper).

    Attributes:
        r: LoRA rank (paper code default 8).
        lora_alpha: LoRA α (paper code default 8).
        lora_dropout: LoRA dropout (paper code default 0).
        target_modules: MLP projections only (paper code default ``up_proj, down_proj, gate_proj``).
        learning_rate: Constant LR; the paper uses 1e-4 for Mistral-7B and 1e-3 for Llama-3.2-3B (Makefile).
        lr_scheduler_type: ``"constant"`` (paper Makefile).
        batch_size: Examples per optimiser step (paper: 8; Makefile: 32).
        num_epochs: Training epochs (paper: 1, "more epochs did not help").
        max_length: Longest tokenised (prompt + answer); longer rows are truncated from the left of the prompt.
        seed: Shuffling / initialisation seed.
        checkpoint_every_power_of_two: Save each head at 1, 2, 4, ... optimiser steps (N = steps × batch examples).
        min_checkpoint_examples: Skip power-of-two checkpoints below this many examples (fewer files).
    """

    r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["up_proj", "down_proj", "gate_proj"])
    learning_rate: float = 1e-3
    lr_scheduler_type: str = "constant"
    batch_size: int = 8
    num_epochs: float = 1.0
    max_length: int = 1024
    seed: int = 42
    checkpoint_every_power_of_two: bool = True
    min_checkpoint_examples: int = 1

    def lora_config(self) -> Any:
        """The heads' adapter: ``negrl.lora`` with every paper setting above given explicitly."""
        from negrl.lora import lora_config

        return lora_config(r=self.r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                           target_modules=list(self.target_modules), bias="none")


def attach_heads(model: Any, config: LikraConfig, heads: Sequence[str] = HEADS) -> Any:
    """Wrap ``model`` in a ``PeftModel`` with one fresh LoRA adapter per head name; every base weight is frozen.

    The adapters' random init is seeded with ``config.seed`` (not left to whatever the process drew before)."""
    from peft import PeftModel, get_peft_model
    from transformers import set_seed

    if isinstance(model, PeftModel):
        raise ValueError("attach_heads expects a plain base model, got a PeftModel (merge or unload it first)")
    set_seed(config.seed)
    peft_model = get_peft_model(model, config.lora_config(), adapter_name=heads[0])
    for head in heads[1:]:
        peft_model.add_adapter(head, config.lora_config())
    return peft_model


def tokenize_pairs(tokenizer: Any, prompts: Sequence[str], answers: Sequence[str], max_length: int = 1024) -> Dataset:
    """Pre-tokenised SFT rows ``input_ids`` / ``completion_mask``: prompt ids + answer ids, loss on the answer only.

    The prompt is tokenised with the tokenizer's special tokens (BOS if it adds one), the answer without, and no EOS
    is appended (paper code). Rows longer than ``max_length`` lose prompt tokens from the left.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    rows: dict[str, list[list[int]]] = {"input_ids": [], "completion_mask": []}
    for i, (p, a) in enumerate(zip(prompts, answers)):
        p_ids = tokenizer(p)["input_ids"]
        a_ids = tokenizer(a, add_special_tokens=False)["input_ids"]
        if not a_ids:
            raise ValueError(f"pair {i}: the answer {a!r} tokenises to nothing")
        if len(a_ids) >= max_length:
            raise ValueError(f"pair {i}: the answer alone has {len(a_ids)} tokens >= max_length={max_length}")
        p_ids = p_ids[max(0, len(p_ids) + len(a_ids) - max_length):]
        rows["input_ids"].append(p_ids + a_ids)
        rows["completion_mask"].append([0] * len(p_ids) + [1] * len(a_ids))
    return Dataset.from_dict(rows)


def power_of_two_steps(n_steps: int) -> list[int]:
    """Optimiser steps 1, 2, 4, ... ≤ ``n_steps``, plus ``n_steps`` itself (the end of the epoch)."""
    steps = [1 << k for k in range(max(n_steps, 1).bit_length()) if 1 << k <= n_steps]
    return steps + ([n_steps] if n_steps and steps[-1] != n_steps else [])


class PowerOfTwoCheckpoint(TrainerCallback):
    """Save the training head at power-of-two steps to ``{root}/n{examples}/{head}`` (examples = steps × batch)."""

    def __init__(self, root: Path, head: str, examples_per_step: int, n_examples: int, min_examples: int = 1):
        self.root, self.head, self.per_step, self.n_examples = Path(root), head, examples_per_step, n_examples
        self.min_examples = min_examples

    def target(self, step: int, max_steps: int) -> Path | None:
        """Where the head is saved after optimiser step ``step`` of ``max_steps``, or None (no save at that step)."""
        last = step == max_steps
        if not (last or step & (step - 1) == 0):
            return None
        n = self.n_examples if last else step * self.per_step
        if n < self.min_examples and not last:
            return None
        return self.root / f"n{n}"

    def saved(self, max_steps: int) -> list[Path]:
        """The head's checkpoints of a run of ``max_steps`` steps, including those saved before a resume."""
        targets = [self.target(step, max_steps) for step in power_of_two_steps(max_steps)]
        return [t / self.head for t in targets if t is not None]

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        out = self.target(state.global_step, state.max_steps)
        if out is not None and state.is_world_process_zero:
            model.save_pretrained(str(out), selected_adapters=[self.head])


def train_head(
    model: Any,
    tokenizer: Any,
    head: str,
    prompts: Sequence[str],
    answers: Sequence[str],
    config: LikraConfig,
    output_dir: str | Path,
    **sft_overrides: Any,
) -> list[Path]:
    """Train adapter ``head`` of ``model`` (from ``attach_heads``) on (prompt, answer) pairs for one epoch.

    Returns the checkpoint directories written (``{output_dir}/checkpoints/n{N}/{head}``), the last one after the
    full epoch. Only ``head``'s LoRA weights change. An interrupted run resumes from the last trainer checkpoint
    under ``{output_dir}/trainer/{head}`` (``negrl.sft.train_sft``); the saved adapters of a checkpoint hold both
    heads, so resuming the second head also restores the first.
    """
    if head not in model.peft_config:
        raise ValueError(f"model has no adapter {head!r}; adapters: {sorted(model.peft_config)}")
    output_dir = Path(output_dir)
    dataset = tokenize_pairs(tokenizer, prompts, answers, config.max_length)
    model.set_adapter(head)  # the active adapter is the only trainable one
    settings: dict[str, Any] = {
        "output_dir": str(output_dir / "trainer" / head), "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler_type, "per_device_train_batch_size": config.batch_size,
        "num_train_epochs": config.num_epochs, "seed": config.seed, "max_length": config.max_length,
        "logging_steps": max(1, len(dataset) // config.batch_size // 10),
    }
    args = cpu_safe_sft_config(**{**settings, **sft_overrides})
    callbacks = []
    if config.checkpoint_every_power_of_two:
        world = max(1, args.world_size)
        cb = PowerOfTwoCheckpoint(output_dir / "checkpoints", head, config.batch_size * world, len(dataset),
                                  config.min_checkpoint_examples)
        callbacks.append(cb)
    trainer = train_sft(model, tokenizer, dataset, args, callbacks=callbacks)
    model.eval()
    if not config.checkpoint_every_power_of_two:
        final = output_dir / "checkpoints" / f"n{len(dataset)}"
        model.save_pretrained(str(final), selected_adapters=[head])
        return [final / head]
    return callbacks[0].saved(trainer.state.max_steps)


def load_head(model: Any, path: str | Path, head: str) -> None:
    """Overwrite adapter ``head`` of ``model`` with the weights saved at ``path`` (a ``checkpoints/n{N}/{head}``)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(path)
    weights = path / "adapter_model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{weights} does not exist (expected a saved '{head}' adapter)")
    result = set_peft_model_state_dict(model, load_file(str(weights)), adapter_name=head)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"{weights}: unexpected keys for adapter {head!r}, e.g. {result.unexpected_keys[:2]}")


def list_checkpoints(output_dir: str | Path, head: str) -> dict[int, Path]:
    """``{N: path}`` of the saved checkpoints of ``head`` under ``{output_dir}/checkpoints``, sorted by N."""
    root = Path(output_dir) / "checkpoints"
    found = {int(d.name[1:]): d / head for d in root.glob("n*") if (d / head / "adapter_model.safetensors").exists()}
    return dict(sorted(found.items()))

