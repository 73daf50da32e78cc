"""Per-benchmark prompting for evaluation: few-shot prefixes for base models, the raw problem for chat models.

``build_prompts(name, problems, few_shot, chat, instruction, ...)`` returns copies of the problems whose ``prompt`` is
the text to continue, plus the stop strings that end a completion. Few-shot examples always come from a split that
is not evaluated (GSM8K / MATH train, MBPP's prompt split 1–10), never from the problems themselves.

With ``chat=True`` the prompt is the problem's own text, which generation wraps in the chat template with
``negrl.generation.format_prompt``: the same string sampling, labelling and training use, so a policy post-trained
with ``use_chat_template`` is evaluated on its training prompts. ``instruction=True`` (off by default, chat only)
appends a per-benchmark instruction that the training prompts lack:

| benchmark | base model (few-shot) | instruction (``chat=True, instruction=True``) |
| --- | --- | --- |
| gsm8k | ``Question: …\\nAnswer: <gold reasoning> #### x`` ×k | question + "reason step by step, final answer in \\boxed{}" |
| math, math500 | ``Problem: …\\nSolution: <gold solution>`` ×k | same instruction as GSM8K |
| humaneval | the signature + docstring, continued (0-shot) | "complete this function" + fenced code |
| mbpp | Austin et al.'s ``[BEGIN] … [DONE]`` 3-shot (task ids 2–4) | task + tests, answer in a fenced block |
| embedded tasks | the raw prompt | the raw prompt |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from negrl.problems import load_problems
from negrl.records import Problem


CHAT_MATH = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
CHAT_HUMANEVAL = "Complete the following Python function. Reply with the whole function in a ```python block.\n\n```python\n{prompt}```"
CHAT_MBPP = "{prompt}\nReply with the Python code in a ```python block."
HUMANEVAL_STOPS = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "]
MBPP_SHOT_IDS = (2, 3, 4)


def _math_shots(name: str, path: str | os.PathLike | None, k: int) -> tuple[str, list[str]]:
    if name == "gsm8k":
        shots = load_problems("gsm8k", path=path, split="train", limit=k)
        return "".join(f"Question: {p.prompt}\nAnswer: {p.solution}\n\n" for p in shots), ["\n\nQuestion:"]
    shots = load_problems("math", path=path, split="train", limit=k)
    return "".join(f"Problem: {p.prompt}\nSolution: {p.solution}\n\n" for p in shots), ["\n\nProblem:"]


def _mbpp_shots(name: str, path: str | os.PathLike | None, k: int) -> str:
    shots = [p for p in load_problems("mbpp", path=path, split="prompt") if p.meta["task_id"] in MBPP_SHOT_IDS][:k]
    return "".join(f"{p.prompt}[BEGIN]\n{p.solution.strip()}\n[DONE]\n" for p in shots)


def build_prompts(
    name: str,
    problems: Sequence[Problem],
    few_shot: int = 0,
    chat: bool = False,
    path: str | os.PathLike | None = None,
    instruction: bool = False,
) -> tuple[list[Problem], list[str]]:
    """Problems with the evaluation prompt for benchmark ``name``, and the stop strings to use.

    Args:
        few_shot: Number of worked examples before each question (base models; ignored with ``chat``).
        chat: The problem's own text, to be wrapped in the tokenizer's chat template by generation (no stops).
        path: Data root for the few-shot examples (same meaning as ``load_problems``'s ``path``).
        instruction: With ``chat``, append the benchmark's answer-format instruction (not in training prompts).
    """
    if instruction and not chat:
        raise ValueError("build_prompts: instruction=True needs chat=True (base models get few-shot prompts)")
    if chat and not instruction:
        return list(problems), []
    if name in ("gsm8k", "math", "math500"):
        if chat:
            return [dataclasses.replace(p, prompt=CHAT_MATH.format(question=p.prompt)) for p in problems], []
        prefix, stops = _math_shots(name, path, few_shot) if few_shot else ("", ["\n\nQuestion:", "\n\nProblem:"])
        word = ("Question", "Answer") if name == "gsm8k" else ("Problem", "Solution")
        return [dataclasses.replace(p, prompt=f"{prefix}{word[0]}: {p.prompt}\n{word[1]}:") for p in problems], stops
    if name == "humaneval":
        if chat:
            return [dataclasses.replace(p, prompt=CHAT_HUMANEVAL.format(prompt=p.prompt)) for p in problems], []
        return list(problems), HUMANEVAL_STOPS
    if name in ("mbpp", "mbpp_sanitized"):
        if chat:
            return [dataclasses.replace(p, prompt=CHAT_MBPP.format(prompt=p.prompt)) for p in problems], []
        prefix = _mbpp_shots(name, path, few_shot) if few_shot else ""
        return [dataclasses.replace(p, prompt=f"{prefix}{p.prompt}[BEGIN]\n") for p in problems], ["[DONE]"]
    return list(problems), []
