"""Multiple-choice verifier (domain ``"choice"``): read which option a completion chose and compare with the gold.

The chosen option is, in order of precedence: an explicit label statement (``"answer is (B)"``, ``"Answer: B"``), a
completion that starts with a label (``"B"``, ``"(B)"``, ``"B."``), or the text of exactly one option appearing in
the completion (longest match first). No choice found → ``correct=False`` (the model did not answer); no gold label
→ ``correct=None`` (cannot verify).
"""

from __future__ import annotations

import re

from negrl.records import Problem, Verdict


def _labels(problem: Problem) -> list[str]:
    return problem.choice_labels or [chr(65 + i) for i in range(len(problem.choices or []))]


def extract_choice(problem: Problem, completion: str) -> str | None:
    """The label of the option ``completion`` chose, or ``None``."""
    labels = _labels(problem)
    alt = "|".join(re.escape(lab) for lab in sorted(labels, key=len, reverse=True))
    if not alt:
        return None
    stated = re.findall(rf"answer(?: is)?\s*[:\-]?\s*\(?({alt})\)?(?![\w])", completion, flags=re.IGNORECASE)
    if stated:
        hit = stated[-1]
        return next((lab for lab in labels if lab.lower() == hit.lower()), None)
    lead = re.match(rf"\s*\(?({alt})\)?(?:[.:)\s]|$)", completion)
    if lead:
        return lead.group(1)
    text = completion.strip().lower()
    found = [
        (len(c), lab) for c, lab in zip(problem.choices or [], labels) if c.strip() and c.strip().lower() in text
    ]
    if found:
        found.sort(reverse=True)
        if len(found) == 1 or found[0][0] > found[1][0]:
            return found[0][1]
    return None


def verify(problem: Problem, completion: str) -> Verdict:
    """Exact label match against ``problem.answer`` (the verifier of the ``choice`` domain)."""
    got = extract_choice(problem, completion)
    if problem.answer is None:
        return Verdict(rollout_id="", correct=None, extracted=got, detail="no gold label", verifier="choice")
    detail = "" if got is not None else "no choice found"
    return Verdict(rollout_id="", correct=got == problem.answer, extracted=got, detail=detail, verifier="choice")
