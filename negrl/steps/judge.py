"""Step judges: an LLM judge (local model or OpenAI-compatible endpoint) and the exact oracle of embedded tasks.

The LLM judge (BCPG-NSA, arXiv 2505.14403) sees the problem and the numbered steps, with the paper's
two context rules in the prompt:

- *error propagation*: a step that builds on an earlier wrong result is wrong too;
- *error termination*: once a later step explicitly notices and corrects the error, the steps after the correction
  can be correct again.

It is asked for one ``Step k: correct|incorrect`` line per step and a final ``First wrong step: k|none`` line.
``parse_judge_output`` reads that robustly (synonyms, any case, markdown, missing lines); what cannot be read stays
``None`` — an unparseable answer never produces negatives.

Backends: ``LLMJudge`` (any causal LM through ``negrl.generation``; greedy; the chat template is used when the
tokenizer has one), ``HTTPJudge`` (``POST {base_url}/chat/completions`` of an OpenAI-compatible server such as
``vllm serve``; standard library only; not exercised against a network in tests). Both derive from ``StepJudge``,
whose ``label`` does prompting, parsing and record building; a subclass only implements ``complete``.

``OracleJudge`` labels steps of embedded-task rollouts with the exact checker ``negrl.tasks.check_steps``: the ground
truth the other sources are validated against.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Sequence
from typing import Any

from negrl.records import Problem, Rollout, Step, StepLabels, problems_by_id
from negrl.steps.consensus import first_error_of
from negrl.steps.segment import segment


JUDGE_TEMPLATE = """You are a careful teacher checking a student's step-by-step solution. Decide for every step \
whether it is correct.

Rules:
- Error propagation: a step that uses a wrong result from an earlier step is incorrect, even if its own \
calculation is done right.
- Error termination: if a later step explicitly notices and corrects an earlier error, the steps after the \
correction can be correct again.

Answer with exactly one line per step, "Step k: correct" or "Step k: incorrect", then one last line \
"First wrong step: k" (or "First wrong step: none" if every step is correct).

Example
Problem: (2+3)*4
Step 1: 2+3=5
Step 2: 5*4=21
Step 3: Answer: 21
Verdict:
Step 1: correct
Step 2: incorrect
Step 3: incorrect
First wrong step: 2

Now the real task.
Problem: {problem}
{steps}
Verdict:
"""

_STEP_NUM_RE = re.compile(r"(?i)^[\s*#>|\-_`]*(?:step\s*(\d+)|(\d+)\s*[.):])")
_NEG_RE = re.compile(
    r"(?i)\b(?:in ?correct|not\s+(?:correct|right|valid|ok)|wrong|false|invalid|errors?|erroneous|flawed|mistaken?|"
    r"no|bad)\b|[✗✘❌]"
)
_POS_RE = re.compile(r"(?i)\b(?:correct|right|true|valid|yes|ok(?:ay)?|fine|no\s+(?:errors?|mistakes?))\b|[✓✔✅]")
_FIRST_RE = re.compile(
    r"(?i)first\s+(?:wrong|incorrect|erroneous|bad|error(?:oneous)?)?\s*(?:step|error)?\s*(?:is|:|=|-)?\s*"
    r"(?:step\s*)?[*_`]*(\d+|none|no\b|n/a|null)"
)
_ALL_CORRECT_RE = re.compile(r"(?i)\ball\s+(?:the\s+)?steps\s+(?:are\s+)?correct\b")


def build_judge_prompt(problem_text: str, steps: Sequence[str], template: str = JUDGE_TEMPLATE) -> str:
    """The judge prompt: the problem and ``Step k: ...`` lines (step text stripped; inner newlines → spaces)."""
    lines = "\n".join(f"Step {i + 1}: {' '.join(s.split())}" for i, s in enumerate(steps))
    return template.format(problem=problem_text.strip(), steps=lines)


def parse_judge_output(text: str, n_steps: int) -> tuple[list[bool | None], int | None]:
    """Per-step labels and the first wrong step (0-based) from a judge's answer.

    Per-step verdicts win; a ``First wrong step: k`` line fills the steps before ``k`` with ``True`` and step ``k``
    with ``False`` where no per-step verdict was given (later steps stay unknown: error termination may apply);
    ``none`` / "all steps are correct" with no per-step verdicts marks every step ``True``. Out-of-range step numbers
    are ignored; a step given conflicting verdicts is ``None``; text after the ``First wrong step`` line is ignored
    (small models run on into invented tasks). Nothing readable → all ``None``.
    """
    text = text or ""
    first = _FIRST_RE.search(text)
    if first is not None:  # the answer ends at its "First wrong step" line (small models run on into new tasks)
        end = text.find("\n", first.end())
        text = text if end < 0 else text[:end]
    verdicts: dict[int, set[bool]] = {}
    for line in text.splitlines():
        m = _STEP_NUM_RE.match(line)
        if m is None:
            continue
        k = int(m.group(1) or m.group(2)) - 1
        verdict = _line_verdict(line[m.end() :])
        if verdict is not None and 0 <= k < n_steps:
            verdicts.setdefault(k, set()).add(verdict)
    labels: list[bool | None] = [
        next(iter(verdicts[i])) if len(verdicts.get(i, ())) == 1 else None for i in range(n_steps)
    ]
    if first is not None:
        token = first.group(1).lower()
        if token.isdigit() and 1 <= int(token) <= n_steps:
            k = int(token) - 1
            for i in range(k):
                labels[i] = True if labels[i] is None and i not in verdicts else labels[i]
            labels[k] = False if labels[k] is None and k not in verdicts else labels[k]
        elif not token.isdigit() and not verdicts:
            labels = [True] * n_steps
    elif _ALL_CORRECT_RE.search(text) and not verdicts:
        labels = [True] * n_steps
    return labels, first_error_of(labels)


def _line_verdict(rest: str) -> bool | None:
    """The first verdict word of a step line (at equal start the longer match wins: "no errors" is positive)."""
    found = [(m.start(), -len(m.group(0)), ok) for ok, rx in ((False, _NEG_RE), (True, _POS_RE)) if (m := rx.search(rest))]
    return min(found)[2] if found else None


class StepJudge:
    """Base class of judges: ``label`` builds prompts, calls ``complete`` once for all of them, parses."""

    source = "judge"

    def complete(self, prompts: list[str]) -> list[str]:
        raise NotImplementedError

    def label(
        self, problems: Sequence[Problem], rollouts: Sequence[Rollout], rule: str = "lines",
        min_chars: int = 0, max_steps: int | None = None,
    ) -> list[StepLabels]:
        """``StepLabels(source="judge")`` per rollout; values are 1.0 / 0.0 / ``None`` like the labels."""
        by_id = problems_by_id(problems, rollouts, "LLMJudge.label")
        segs = [segment(r.completion, rule, min_chars=min_chars, max_steps=max_steps) for r in rollouts]
        prompts = [
            build_judge_prompt(_problem_text(by_id[r.problem_id]), [s.text for s in steps])
            for r, steps in zip(rollouts, segs)
        ]
        outputs = self.complete(prompts)
        out = []
        for r, steps, raw in zip(rollouts, segs, outputs):
            labels, first = parse_judge_output(raw, len(steps))
            unreadable = all(x is None for x in labels)
            out.append(
                StepLabels(
                    rollout_id=r.rollout_id, steps=steps, values=[None if x is None else float(x) for x in labels],
                    labels=labels, first_error=first, source=self.source,
                    detail=("unparseable: " + raw[:300]) if unreadable else "",
                )
            )
        return out


def _problem_text(problem: Problem) -> str:
    """The question without the embedded tasks' ``Q:`` prefix."""
    text = problem.prompt.strip()
    return text[2:].strip() if text.startswith("Q:") else text


class LLMJudge(StepJudge):
    """An LLM judge on a local causal LM, greedy, batched through ``negrl.generation.generate_texts``."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 96, batch_size: int = 16,
                 use_chat_template: bool | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.use_chat_template = (
            getattr(tokenizer, "chat_template", None) is not None if use_chat_template is None else use_chat_template
        )

    def complete(self, prompts: list[str]) -> list[str]:
        from negrl.generation import GenerationConfig, format_prompt, generate_texts

        texts = [format_prompt(p, self.tokenizer, self.use_chat_template) for p in prompts]
        # A prompt the model cannot hold (tiny models: 256 positions) gets an empty answer → None labels.
        limit = getattr(getattr(self.model, "config", None), "max_position_embeddings", None) or 10**9
        fits = [i for i, t in enumerate(texts)
                if len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) + self.max_new_tokens <= limit]
        cfg = GenerationConfig(temperature=0.0, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                               show_progress=len(fits) > self.batch_size)
        out = [""] * len(texts)
        for i, g in zip(fits, generate_texts([texts[i] for i in fits], self.model, self.tokenizer, cfg)):
            out[i] = g.text
        return out


class HTTPJudge(StepJudge):
    """An LLM judge behind an OpenAI-compatible ``/chat/completions`` endpoint (e.g. ``vllm serve``).

    A request that fails gives an empty answer, hence ``None`` labels for that rollout (never negatives).
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_tokens: int = 512,
                 timeout: float = 120.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.errors: list[str] = []

    def _one(self, prompt: str) -> str:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0,
                "max_tokens": self.max_tokens}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())["choices"][0]["message"]["content"] or ""
        except (OSError, ValueError, KeyError, IndexError) as e:
            self.errors.append(f"{type(e).__name__}: {e}")
            return ""

    def complete(self, prompts: list[str]) -> list[str]:
        return [self._one(p) for p in prompts]


class OracleJudge(StepJudge):
    """Ground-truth step labels of embedded tasks from ``negrl.tasks.check_steps`` (exact, per line).

    A step is correct iff every checker line it overlaps is correct (a step of several lines needs all of them).
    """

    source = "oracle"

    def label(
        self, problems: Sequence[Problem], rollouts: Sequence[Rollout], rule: str = "lines",
        min_chars: int = 0, max_steps: int | None = None,
    ) -> list[StepLabels]:
        from negrl.tasks import check_steps

        by_id = problems_by_id(problems, rollouts, "OracleJudge.label")
        out = []
        for r in rollouts:
            steps = segment(r.completion, rule, min_chars=min_chars, max_steps=max_steps)
            line_ok = check_steps(by_id[r.problem_id], r.completion)
            labels: list[bool | None] = [_oracle_step(r.completion, line_ok, s) for s in steps]
            out.append(
                StepLabels(
                    rollout_id=r.rollout_id, steps=steps, values=[float(x) for x in labels], labels=labels,
                    first_error=first_error_of(labels), source=self.source, detail="exact checker",
                )
            )
        return out


def _oracle_step(completion: str, line_ok: list[bool], step: Step) -> bool:
    """AND of the checker labels of the lines overlapping ``step`` (a line owns its trailing newline)."""
    start = 0
    result = True
    for ok, line in zip(line_ok, completion.split("\n")):
        end = start + len(line) + 1
        if start < step.end and end > step.start:
            result = result and ok
        start = end
    return result
