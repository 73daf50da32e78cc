"""A process reward model (PRM) on any causal LM: trainer (transformers ``Trainer``, optional LoRA) and scorer.

TRL 1.x no longer ships a ``PRMTrainer``; this is the small replacement negrl needs.

Design (kept simple, works for every causal LM without a new head): the PRM reads the input
``prompt ⊕ step_1 ⊕ … ⊕ step_L`` unchanged (no separator tokens are inserted) and, at the **last token of each
step**, compares the LM-head logits of two label tokens, ``"+"`` and ``"-"`` by default:
``P(step correct) = sigmoid(logit["+"] − logit["-"])`` (Math-Shepherd-style label tokens). One forward pass scores
every step of a rollout. Training minimises ``negrl.losses.prm_step_loss`` (binary cross-entropy) on hard labels
(``True``/``False``) or soft ones (Monte-Carlo values in [0, 1]); ``None`` labels are masked out. With a BPE
tokenizer a token can straddle a step boundary; the step is then read at the last token that *starts* inside it.

Data: TRL's stepwise-supervision rows ``{"prompt": str, "completions": [step texts], "labels": [bool | float |
None]}``; ``prm_rows`` builds them from ``StepLabels`` (e.g. Monte-Carlo labels). The prompt is the problem's raw
prompt (no chat template), for training and scoring alike.

Save / load: ``PRMScorer.save_pretrained(dir)`` writes a plain model directory (a LoRA adapter is merged into a copy
of the model first) plus ``prm.json`` (label tokens, threshold λ); ``PRMScorer.from_pretrained(dir)`` loads it.

Off-the-shelf PRMs go through the same ``PRMScorer`` (``score`` / ``label``); ``negrl.steps.prm_formats`` describes
the families and their ``PRMFormat`` fields, which ``from_pretrained`` takes as keyword options (or a ``prm.json``
with a ``family`` field next to the weights):

- Qwen2.5-Math-PRM (a reward head read at ``<extra_0>`` after each step, chat layout with Qwen's system prompt):
  ``PRMScorer.from_pretrained("Qwen/Qwen2.5-Math-PRM-7B", trust_remote_code=True)``; its
  ``Qwen2ForProcessRewardModel`` architecture selects ``family="step_head"`` (``separator="<extra_0>"``,
  ``positive_index=1``, ``chat_template=True``). In a label source: ``LabelSettings(prm_model=...,
  prm_options={"trust_remote_code": True})``.
- Math-Shepherd (``peiyi9979/math-shepherd-mistral-7b-prm``, a plain causal LM, so the family must be named):
  ``PRMScorer.from_pretrained(id, family="step_tag")`` (tag ``separator=" ки"``, label tokens ``"+"`` / ``"-"``,
  input ``question + " " + steps`` with BOS); it was trained on ``Step k:`` steps (segmentation rule
  ``"step_markers"``).

Both layouts are tested on tiny locally built models of each shape against the model cards' own reading recipes;
the real checkpoints themselves have not been run here.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from negrl.losses import prm_step_loss
from negrl.records import Problem, Rollout, StepLabels, problems_by_id
from negrl.steps.consensus import first_error_of
from negrl.steps.prm_formats import (
    FAMILY_DEFAULTS,
    PRMFormat,
    config_architectures,
    detect_family,
    encode_spans,
    format_meta,
    layout,
    load_step_head,
    make_format,
    step_probabilities,
)
from negrl.steps.segment import segment
from negrl.trainer_defaults import CheckpointDefaults, DeviceDefaults
from negrl.trainers.resume import train_resuming


IGNORE = -100.0
PRM_FILE = "prm.json"


@dataclass
class PRMConfig(DeviceDefaults, CheckpointDefaults, TrainingArguments):
    """``TrainingArguments`` plus the PRM's label tokens, length cap and λ; device-aware precision, resumable
    checkpoints, no reports and custom columns kept by default (``negrl.trainer_defaults``)."""

    positive_token: str = field(default="+", metadata={"help": "Label token read as 'step correct'."})
    negative_token: str = field(default="-", metadata={"help": "Label token read as 'step wrong'."})
    max_length: int = field(default=512, metadata={"help": "Token cap of prompt + steps (later steps are cut)."})
    threshold: float = field(default=0.5, metadata={"help": "λ: a step is correct if P(correct) >= λ."})
    bf16: bool | None = field(default=None, metadata={"help": "None: bf16 where the GPU supports it, else fp32."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Off: small models gain nothing."})
    report_to: Any = field(default="none", metadata={"help": "Loggers (none by default)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep step_targets (must stay False)."})


def label_token_ids(tokenizer: Any, positive: str, negative: str) -> tuple[int, int]:
    """Ids of the two label tokens; each must be exactly one token."""
    ids = []
    for tok in (positive, negative):
        enc = tokenizer(tok, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise ValueError(f"PRM label token {tok!r} is {len(enc)} tokens for this tokenizer; pick a single token")
        ids.append(enc[0])
    if ids[0] == ids[1]:
        raise ValueError("PRM positive and negative label tokens must differ")
    return ids[0], ids[1]


def encode_steps(tokenizer: Any, prompt: str, steps: Sequence[str], max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt + "".join(steps)`` and, per step, the index of its last token (-1 if cut off)."""
    text, spans = layout(FAMILY_DEFAULTS["negrl"], tokenizer, prompt, steps)
    return encode_spans(tokenizer, text, spans, max_length)


def tokenize_row(row: dict[str, Any], tokenizer: Any, max_length: int) -> dict[str, Any]:
    """A stepwise-supervision row → ``input_ids`` and ``step_targets`` (``IGNORE`` except at scored step ends)."""
    steps, labels = row["completions"], row["labels"]
    if len(steps) != len(labels):
        raise ValueError(f"PRM row: {len(steps)} completions (steps) but {len(labels)} labels")
    ids, positions = encode_steps(tokenizer, row["prompt"], steps, max_length)
    targets = [IGNORE] * len(ids)
    for pos, lab in zip(positions, labels):
        if pos >= 0 and lab is not None:
            targets[pos] = float(lab)
    return {"input_ids": ids, "step_targets": targets}


def collate(features: list[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids`` (pad id) and ``step_targets`` (``IGNORE``); build the attention mask."""
    n = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), n), pad_token_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(features), n), dtype=torch.long)  # (B, T)
    targets = torch.full((len(features), n), IGNORE)  # (B, T)
    for i, f in enumerate(features):
        k = len(f["input_ids"])
        ids[i, :k] = torch.tensor(f["input_ids"])
        mask[i, :k] = 1
        targets[i, :k] = torch.tensor(f["step_targets"], dtype=torch.float)
    return {"input_ids": ids, "attention_mask": mask, "step_targets": targets}


def step_logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, where: torch.Tensor,
                label_ids: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos, neg)`` label-token logits, each ``(N,)``, at the ``N`` positions where ``where (B, T)`` is true."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V)
    picked = logits[where]  # (N, V)
    return picked[:, label_ids[0]].float(), picked[:, label_ids[1]].float()


class PRMTrainer(Trainer):
    """``transformers.Trainer`` whose loss is ``prm_step_loss`` at the step-end positions (see module docstring)."""

    def __init__(self, model: Any, args: PRMConfig, train_dataset: Dataset | Sequence[dict[str, Any]],
                 processing_class: Any, peft_config: Any | None = None, **kwargs: Any) -> None:
        if peft_config is not None:
            from peft import get_peft_model
            from transformers import set_seed

            set_seed(args.seed)  # the adapter's init from args.seed alone (Trainer.__init__ seeds only later)
            model = get_peft_model(model, peft_config)
        self.label_ids = label_token_ids(processing_class, args.positive_token, args.negative_token)
        if not isinstance(train_dataset, Dataset):
            train_dataset = Dataset.from_list(list(train_dataset))
        if "input_ids" not in train_dataset.column_names:
            train_dataset = train_dataset.map(
                lambda r: tokenize_row(r, processing_class, args.max_length), remove_columns=train_dataset.column_names
            )
        pad = processing_class.pad_token_id
        super().__init__(model=model, args=args, train_dataset=train_dataset, processing_class=processing_class,
                         data_collator=lambda feats: collate(feats, pad), **kwargs)

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        targets = inputs["step_targets"]  # (B, T)
        where = targets != IGNORE  # (B, T)
        pos, neg = step_logits(model, inputs["input_ids"], inputs["attention_mask"], where, self.label_ids)
        loss = prm_step_loss(pos, neg, targets[where]) if where.any() else (pos.sum() * 0.0)
        return (loss, {"margin": pos - neg}) if return_outputs else loss


def train_prm(model: Any, tokenizer: Any, rows: Dataset | Sequence[dict[str, Any]], args: PRMConfig,
              peft_config: Any | None = None) -> PRMTrainer:
    """Train a PRM on stepwise-supervision rows, resuming from the last checkpoint of ``args.output_dir``
    (``negrl.trainers.resume``); returns the trainer (``trainer.model`` is the PRM)."""
    trainer = PRMTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                         peft_config=peft_config)
    train_resuming(trainer)
    return trainer


def fit_prm(model: Any, tokenizer: Any, problems: Sequence[Problem], step_labels: Sequence[StepLabels],
            output_dir: str | os.PathLike, *, steps: int, learning_rate: float, lora_r: int, seed: int,
            threshold: float = 0.5, soft: bool = False, save_to: str | os.PathLike | None = None) -> tuple[PRMScorer, int]:
    """The one recipe negrl trains a PRM on step labels with: LoRA (``negrl.lora`` default, alpha 2r), batch 32,
    cosine schedule with 10 warm-up steps, ``steps`` optimizer steps; returns ``(scorer, rows)``.

    ``output_dir`` holds the trainer's checkpoints; ``save_to`` (if given) receives ``PRMScorer.save_pretrained``.
    """
    from negrl.lora import lora_config

    rows = prm_rows(problems, step_labels, soft=soft)
    args = PRMConfig(output_dir=str(output_dir), learning_rate=learning_rate, per_device_train_batch_size=32,
                     max_steps=steps, lr_scheduler_type="cosine", warmup_steps=10, logging_steps=50,
                     disable_tqdm=True, seed=seed, threshold=threshold)
    trainer = train_prm(model, tokenizer, rows, args, peft_config=lora_config(r=lora_r, lora_alpha=2 * lora_r))
    scorer = PRMScorer.from_trainer(trainer)
    if save_to is not None:
        scorer.save_pretrained(save_to)
    return scorer, len(rows)


def prm_rows(problems: Sequence[Problem], step_labels: Sequence[StepLabels], soft: bool = False) -> list[dict[str, Any]]:
    """Stepwise-supervision rows from ``StepLabels`` (hard ``labels``, or ``values`` when ``soft``).

    With ``soft``, a step without a value (e.g. after an early-stopped pit) falls back to its hard label.
    """
    by_id = {p.problem_id: p for p in problems}
    rows = []
    for lab in step_labels:
        pid = lab.rollout_id.rsplit("#", 1)[0]
        if pid not in by_id:
            raise ValueError(f"prm_rows: rollout {lab.rollout_id!r} does not name a known problem ('problem_id#k')")
        targets: list[Any] = list(lab.labels)
        if soft:
            targets = [v if v is not None else (None if h is None else float(h)) for v, h in zip(lab.values, lab.labels)]
        rows.append({"prompt": by_id[pid].prompt, "completions": [s.text for s in lab.steps], "labels": targets})
    return rows


class PRMScorer:
    """Per-step ``P(correct)`` of new rollouts from a PRM of any family (``negrl.steps.prm_formats``); thresholded
    at λ into ``StepLabels(source="prm")``.

    ``fmt`` says how the PRM reads a rollout (default: negrl's own family with ``positive_token`` /
    ``negative_token``); ``PRMScorer.from_pretrained`` builds it from ``prm.json``, the model's config and options.
    """

    def __init__(self, model: Any, tokenizer: Any, threshold: float = 0.5, positive_token: str = "+",
                 negative_token: str = "-", batch_size: int = 32, max_length: int = 512,
                 fmt: PRMFormat | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.threshold, self.batch_size, self.max_length = threshold, batch_size, max_length
        self.format = fmt or PRMFormat(positive_token=positive_token, negative_token=negative_token)
        self.positive_token, self.negative_token = self.format.positive_token, self.format.negative_token
        self.label_ids = (label_token_ids(tokenizer, self.positive_token, self.negative_token)
                          if self.format.reads_label_tokens else None)

    @classmethod
    def from_trainer(cls, trainer: PRMTrainer, threshold: float | None = None) -> PRMScorer:
        a = trainer.args
        return cls(trainer.model, trainer.processing_class, a.threshold if threshold is None else threshold,
                   a.positive_token, a.negative_token, max_length=a.max_length)

    def encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Token ids the PRM reads for one rollout and, per step, the position its score is read at (-1: cut off)."""
        fmt = self.format
        text, spans = layout(fmt, self.tokenizer, prompt, list(steps))
        return encode_spans(self.tokenizer, text, spans, self.max_length,
                            add_special_tokens=fmt.add_special_tokens and not fmt.chat_template,
                            exact_end=fmt.family != "negrl")

    @torch.no_grad()
    def score(self, prompts: Sequence[str], step_lists: Sequence[Sequence[str]]) -> list[list[float | None]]:
        """``P(correct)`` per step (``None`` for a step cut off by ``max_length``), batched forward passes."""
        was_training = self.model.training
        self.model.eval()
        out: list[list[float | None]] = []
        pad = self.tokenizer.pad_token_id
        device = next(self.model.parameters()).device
        for b in range(0, len(prompts), self.batch_size):
            feats, positions = [], []
            for prompt, steps in zip(prompts[b : b + self.batch_size], step_lists[b : b + self.batch_size]):
                ids, pos = self.encode(prompt, steps)
                feats.append({"input_ids": ids, "step_targets": [IGNORE] * len(ids)})
                positions.append(pos)
            batch = collate(feats, pad)  # right padding: the read positions stay where they are
            result = self.model(input_ids=batch["input_ids"].to(device),
                                attention_mask=batch["attention_mask"].to(device))
            logits = result.logits if hasattr(result, "logits") else result[0]  # (B, T, V) or (B, T, C)
            probs = step_probabilities(self.format, logits, self.label_ids).cpu()  # (B, T)
            out.extend([None if p < 0 else float(probs[i, p]) for p in pos] for i, pos in enumerate(positions))
        self.model.train(was_training)
        return out

    def label(self, problems: Sequence[Problem], rollouts: Sequence[Rollout], rule: str = "lines",
              min_chars: int = 0, max_steps: int | None = None) -> list[StepLabels]:
        """Score and threshold: label = ``P >= λ``; ``first_error`` = first step below λ (all earlier known)."""
        by_id = problems_by_id(problems, rollouts, "PRMScorer.label")
        segs = [segment(r.completion, rule, min_chars=min_chars, max_steps=max_steps) for r in rollouts]
        probs = self.score([by_id[r.problem_id].prompt for r in rollouts], [[s.text for s in st] for st in segs])
        out = []
        for r, steps, ps in zip(rollouts, segs, probs):
            labels: list[bool | None] = [None if p is None else p >= self.threshold for p in ps]
            out.append(StepLabels(rollout_id=r.rollout_id, steps=steps, values=list(ps), labels=labels,
                                  first_error=first_error_of(labels), source="prm", detail=f"λ={self.threshold}"))
        return out

    def save_pretrained(self, output_dir: str | os.PathLike) -> None:
        """A plain model directory (LoRA merged into a copy) plus ``prm.json`` (threshold, length cap, format)."""
        from negrl.modeling import save_policy

        model = self.model
        if hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        if self.format.family == "step_head":
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            model.save_pretrained(output_dir)
            self.tokenizer.save_pretrained(output_dir)
        else:
            save_policy(model, self.tokenizer, output_dir)
        meta = {**format_meta(self.format), "threshold": self.threshold, "max_length": self.max_length}
        (Path(output_dir) / PRM_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, threshold: float | None = None, device: str | None = None,
                        batch_size: int = 32, family: str | None = None, max_length: int | None = None,
                        **options: Any) -> PRMScorer:
        """Load a PRM of any family: a directory or hub id.

        The family is ``family`` if given, else ``prm.json``'s (negrl's own directories: ``"negrl"``), else
        ``"step_head"`` for a ``*ForProcessRewardModel`` architecture; anything else is an error that says to pass
        ``family``. ``options`` are ``PRMFormat`` fields (e.g. ``separator``, ``trust_remote_code``) over the
        family's defaults and ``prm.json``; ``threshold`` / ``max_length`` default to ``prm.json``'s, else 0.5 / 4096.
        """
        from negrl.modeling import check_local_model_path, load_policy

        name = str(path)
        if not Path(name).expanduser().is_dir():
            check_local_model_path(name)  # a path-like name that is no directory: "no such directory"
        meta_path = Path(name) / PRM_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
        archs = [] if meta is not None else config_architectures(name)
        fam = family or detect_family(meta, archs)
        if fam is None:
            raise ValueError(
                f"PRM {name!r}: no {PRM_FILE} (not saved by PRMScorer.save_pretrained) and its config.json "
                f"architectures {archs} are no step-separator reward model (*ForProcessRewardModel); pass "
                "family='step_tag' for a Math-Shepherd-style '+'/'-' token PRM or family='step_head' for a reward "
                "head read at a separator token (negrl.steps.prm_formats)")
        saved = {k: v for k, v in (meta or {}).items() if k not in ("family", "threshold", "max_length")}
        fmt = make_format(fam, {**saved, **options}, where=f"PRM {name!r}")
        if fmt.family == "step_head":
            model, tok = load_step_head(name, fmt, device=device)
        else:
            model, tok = load_policy(name, device=device, trust_remote_code=fmt.trust_remote_code)
        meta = meta or {}
        return cls(model, tok, meta.get("threshold", 0.5) if threshold is None else threshold,
                   batch_size=batch_size, max_length=max_length or meta.get("max_length", 4096), fmt=fmt)

    load = from_pretrained  # short alias
