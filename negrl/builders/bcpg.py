"""BCPG-NSA offline data (arXiv 2505.14403 §4): groups, baselines, behaviour log-probs,
and correct steps mined inside negatives.

Stages, each a plain function over records:

1. ``build_bcpg_samples`` — G verified samples per problem from the behaviour policy → ``BCPGSample`` rows. Samples
   that could not be verified (``Verdict.correct is None``) are dropped (never negatives); then every group that is
   all correct or all wrong is dropped (its advantages would all be 0). ``r ∈ {0, 1}``, and the baseline ``r̄`` is the
   mean over the problem's *whole* group (not the mini-batch), so ``advantage = r − r̄`` is fixed per sample. The
   behaviour log-probability ``log π_ref(y|x)`` of each sample is computed once here (``negrl.completion_tokens.
   sequence_logps``) on exactly the token ids the trainer will see, so training needs no reference model. Those
   are the ids the policy generated (``BCPGSample.completion_ids``) when the rollout kept ids that decode to its
   completion, else the completion's encoding (rollouts written before ids were kept).
   Resumable: with ``out_dir`` the samples are written as a ``StageWriter`` stage in chunks.
2. ``mine_correct_steps`` — negatives are segmented into steps (``negrl.steps.segment``; the labels carry their own
   segmentation) and labelled by an *annotator* (``StepLabels`` from any source: the paper's consensus of an LLM
   judge and a PRM with rule ``and``, or MC / PRM / judge alone, or the exact ``oracle`` for the ablation); the
   character spans of steps labelled ``True`` become ``mined_spans``. Unknown (``None``) labels are never mined.
3. ``bcpg_dataset`` — rows for ``BCPGNSATrainer``: tokens of mined spans inside negatives get weight ``β``
   (Eq. 7), every other completion token weight 1 (positives are never re-weighted); ``β = 1`` is plain BCPG.
   Re-weighting is cheap, so a β sweep or an annotator ablation reuses one ``build_bcpg_samples`` stage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from datasets import Dataset
from tqdm.auto import tqdm

from negrl.builders.groups import GeneratedTokens
from negrl.completion_tokens import sequence_logps, tokenize_weighted
from negrl.generation import format_prompt
from negrl.io import StageWriter
from negrl.records import Problem, Record, Rollout, StepLabels, Verdict


@dataclass
class BCPGSample(Record):
    """One behaviour-policy sample with its group baseline and behaviour log-probability.

    Attributes:
        rollout_id, problem_id: Ids of the rollout and its problem.
        prompt: The text the policy was conditioned on (chat template applied if the policy used one).
        completion: The sampled completion.
        finished: ``True`` if the sample ended (EOS / stop); an EOS token is then trained on, else not.
        reward: ``r ∈ {0, 1}`` from the verifier.
        advantage: ``r − r̄``, with ``r̄`` the mean reward of the problem's whole group.
        group_size: Verified samples of the problem (G).
        ref_logp: ``log π_ref(y|x)`` under the behaviour policy, on the trainer's token ids.
        n_tokens: Token count of prompt + completion as scored (checked again when building the dataset).
        mined_spans: ``[start, end]`` character spans of steps labelled correct inside a negative.
        annotator: Label source of ``mined_spans`` (``""`` until mined).
        completion_ids: The rollout's generated token ids (they decode to ``completion``): the completion tokens
            scored and trained, instead of the completion's encoding; ``None`` when the rollout kept none.
    """

    key_field: ClassVar[str] = "rollout_id"

    rollout_id: str
    problem_id: str
    prompt: str
    completion: str
    finished: bool
    reward: float
    advantage: float
    group_size: int
    ref_logp: float | None = None
    n_tokens: int = 0
    mined_spans: list[list[int]] = field(default_factory=list)
    annotator: str = ""
    completion_ids: list[int] | None = None

    @property
    def is_negative(self) -> bool:
        return self.advantage < 0


@dataclass
class BCPGDataConfig:
    """Settings of the offline data stage (tokenisation must match the trainer's)."""

    max_length: int = 1024
    use_chat_template: bool = False
    logp_batch_size: int = 64
    chunk_size: int = 2048


def group_samples(
    problems: Sequence[Problem], rollouts: Sequence[Rollout], verdicts: Sequence[Verdict], use_chat_template: bool,
    tokenizer: Any = None,
) -> list[BCPGSample]:
    """Verified samples of mixed groups with ``r − r̄`` (group mean over the problem's verified samples); with a
    tokenizer, each keeps its rollout's generated ids when they decode to its completion."""
    tokens = GeneratedTokens(tokenizer) if tokenizer is not None else None
    by_problem = {p.problem_id: p for p in problems}
    correct = {v.rollout_id: v.correct for v in verdicts}
    groups: dict[str, list[Rollout]] = defaultdict(list)
    for r in rollouts:
        if r.rollout_id not in correct:
            raise ValueError(f"rollout {r.rollout_id!r} has no verdict")
        if correct[r.rollout_id] is not None:
            groups[r.problem_id].append(r)
    out = []
    for pid, group in groups.items():
        rewards = [1.0 if correct[r.rollout_id] else 0.0 for r in group]
        if min(rewards) == max(rewards):
            continue  # all correct or all wrong: zero advantage everywhere (paper §4 data filter)
        mean = sum(rewards) / len(rewards)
        prompt = format_prompt(by_problem[pid].prompt, tokenizer, use_chat_template)
        out.extend(
            BCPGSample(
                rollout_id=r.rollout_id, problem_id=pid, prompt=prompt, completion=r.completion,
                finished=r.finish_reason == "stop", reward=rew, advantage=rew - mean, group_size=len(group),
                completion_ids=list(r.completion_ids or []) if tokens is not None and tokens.usable(r) else None,
            )
            for r, rew in zip(group, rewards)
        )
    return out


def sample_tokens(
    sample: BCPGSample, tokenizer: Any, max_length: int | None, spans: Sequence[Sequence[float]] | None = None
) -> dict[str, list]:
    """The trainer's token ids of a sample (EOS only on finished samples; its generated ids when it kept them),
    with optional weight spans."""
    return tokenize_weighted(tokenizer, sample.prompt, sample.completion, spans=spans, add_eos=sample.finished,
                             max_length=max_length, completion_ids=sample.completion_ids)


def build_bcpg_samples(
    problems: Sequence[Problem],
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    model: Any,
    tokenizer: Any,
    config: BCPGDataConfig | None = None,
    out_dir: str | Path | None = None,
) -> list[BCPGSample]:
    """Filter groups, compute baselines and behaviour log-probs (``model`` = the policy that sampled the data)."""
    config = config or BCPGDataConfig()
    samples = group_samples(problems, rollouts, verdicts, config.use_chat_template, tokenizer)
    writer = None
    if out_dir is not None:
        stage_cfg = {"max_length": config.max_length, "use_chat_template": config.use_chat_template,
                     "rollouts": len(rollouts), "samples": len(samples),
                     "model": str(getattr(model, "name_or_path", ""))}
        writer = StageWriter(out_dir, BCPGSample, stage_cfg, shard_size=config.chunk_size)
        if writer.complete:
            return writer.records()
        done = writer.done_keys
        todo = [s for s in samples if s.rollout_id not in done]
    else:
        todo = samples
    for start in tqdm(range(0, len(todo), config.chunk_size), desc="behaviour log-probs", disable=len(todo) < 2048):
        chunk = todo[start : start + config.chunk_size]
        rows = [sample_tokens(s, tokenizer, config.max_length) for s in chunk]
        logps = sequence_logps(model, rows, tokenizer.pad_token_id, batch_size=config.logp_batch_size)
        for s, row, lp in zip(chunk, rows, logps):
            s.ref_logp, s.n_tokens = lp, len(row["input_ids"])
        if writer is not None:
            writer.write(chunk)
            writer.flush()
    if writer is None:
        return samples
    writer.finalize(negatives=sum(s.is_negative for s in samples), problems=len({s.problem_id for s in samples}))
    return writer.records()


def mine_correct_steps(
    samples: Sequence[BCPGSample], step_labels: Mapping[str, StepLabels] | Sequence[StepLabels], annotator: str
) -> list[BCPGSample]:
    """Copies of ``samples`` whose negatives carry the spans of steps labelled ``True`` by ``step_labels``.

    A negative without labels mines nothing (all its tokens keep weight 1); positives never mine.
    """
    by_id = step_labels if isinstance(step_labels, Mapping) else {lab.rollout_id: lab for lab in step_labels}
    out = []
    for s in samples:
        spans: list[list[int]] = []
        lab = by_id.get(s.rollout_id) if s.is_negative else None
        if lab is not None:
            spans = [[st.start, st.end] for st, ok in zip(lab.steps, lab.labels) if ok is True and st.end > st.start]
        out.append(BCPGSample(**{**s.to_row(), "mined_spans": spans, "annotator": annotator}))
    return out


def bcpg_dataset(
    samples: Sequence[BCPGSample], tokenizer: Any, beta: float, max_length: int | None = 1024
) -> Dataset:
    """Trainer rows: ``input_ids``, ``completion_mask``, ``token_weights`` (β on mined spans), ``advantage``,
    ``ref_logp``, plus ``rollout_id`` for inspection.

    Raises if a sample's token count differs from the one its ``ref_logp`` was computed on (different tokenizer or
    ``max_length``), since the behaviour constraint would then compare different sequences.
    """
    if not -1.0 <= beta <= 1.0:
        raise ValueError(f"BCPG-NSA beta must lie in [-1, 1], got {beta}")
    rows: dict[str, list] = defaultdict(list)
    for s in samples:
        if s.ref_logp is None:
            raise ValueError(f"sample {s.rollout_id!r} has no ref_logp: run build_bcpg_samples first")
        spans = [(a, b, beta) for a, b in s.mined_spans] if s.is_negative else None
        tok = sample_tokens(s, tokenizer, max_length, spans=spans)
        if s.n_tokens and len(tok["input_ids"]) != s.n_tokens:
            raise ValueError(
                f"sample {s.rollout_id!r}: {len(tok['input_ids'])} tokens now but ref_logp was computed on "
                f"{s.n_tokens} (same tokenizer and max_length needed)"
            )
        for k, v in tok.items():
            rows[k].append(v)
        rows["advantage"].append(s.advantage)
        rows["ref_logp"].append(s.ref_logp)
        rows["rollout_id"].append(s.rollout_id)
    return Dataset.from_dict(dict(rows))


def mining_stats(
    samples: Sequence[BCPGSample], problems: Sequence[Problem], tokenizer: Any, max_length: int | None = 1024
) -> dict[str, float]:
    """How many negative-sample tokens were mined, and their precision against the exact step checker.

    A mined token is *truly correct* if it starts on a line that ``negrl.tasks.check_steps`` marks correct (embedded
    tasks only). Returns counts of negative / mined / truly-correct tokens, token precision and recall.
    """
    from negrl.tasks import check_steps

    by_id = {p.problem_id: p for p in problems}
    neg = mined = true_pos = truly_correct = 0
    for s in samples:
        if not s.is_negative:
            continue
        good_lines, pos = [], 0
        for line, ok in zip(s.completion.split("\n"), check_steps(by_id[s.problem_id], s.completion)):
            if ok:
                good_lines.append([pos, min(pos + len(line) + 1, len(s.completion))])  # the line and its newline
            pos += len(line) + 1
        is_mined = _span_flags(s, tokenizer, max_length, s.mined_spans)
        is_true = _span_flags(s, tokenizer, max_length, good_lines)
        neg += len(is_mined)
        mined += sum(is_mined)
        truly_correct += sum(is_true)
        true_pos += sum(a and b for a, b in zip(is_mined, is_true))
    return {
        "negative_tokens": neg, "mined_tokens": mined, "truly_correct_tokens": truly_correct,
        "precision": true_pos / mined if mined else float("nan"),
        "recall": true_pos / truly_correct if truly_correct else float("nan"),
    }


def _span_flags(sample: BCPGSample, tokenizer: Any, max_length: int | None, spans: list[list[int]]) -> list[bool]:
    """Per completion token (EOS included): is it inside one of ``spans`` (``tokenize_weighted``'s rule)?"""
    tok = tokenize_weighted(tokenizer, sample.prompt, sample.completion, spans=[(a, b, 1.0) for a, b in spans],
                            default_weight=0.0, add_eos=sample.finished, max_length=max_length,
                            completion_ids=sample.completion_ids)
    return [w == 1.0 for m, w in zip(tok["completion_mask"], tok["token_weights"]) if m]
