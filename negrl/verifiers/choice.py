"""Multiple-choice verifier (domain ``"choice"``): read which option a completion chose and compare with the gold.

The chosen option is, in order of precedence: an explicit label statement (``"answer is (B)"``, ``"Answer: B"``), a
completion that starts with a label (``"B"``, ``"(B)"``, ``"B."``), or the text of exactly one option appearing in
the completion (longest match first). A label that is also an English word (``a``, ``I``) followed by another word
is read as that word, not as a label, unless it is bracketed or the next word is one that follows labels ("is",
"because"...): ``"The answer is a gas"`` names no option by letter (the option whose text is "gas" still
matches), ``"The answer is (a) gas"`` and ``"A is correct"`` name A. No choice found →
``correct=False`` (the model did not answer); no gold label → ``correct=None`` (cannot verify).
"""

from __future__ import annotations

import re

from negrl.records import Problem, Verdict


def _labels(problem: Problem) -> list[str]:
    return problem.choice_labels or [chr(65 + i) for i in range(len(problem.choices or []))]


_WORD_LABELS = {"a", "i"}  # labels that are also English words
# After a label, not after an article: "A is correct", "B because ..."
_AFTER_LABEL_RE = re.compile(r"[ \t]+(?:is|was|would|seems|because|since|as)\b", re.IGNORECASE)


def _is_label(match: re.Match, text: str) -> bool:
    """A matched label is a label unless it is an unbracketed English word followed by another word (an article:
    "a gas"), with the exception of the verbs and conjunctions that follow a label ("A is correct")."""
    rest = text[match.end() :]
    bracketed = bool(match.group("open") or match.group("close"))
    word_next = re.match(r"[ \t]+[A-Za-z]", rest) and not _AFTER_LABEL_RE.match(rest)
    return bracketed or match.group("label").lower() not in _WORD_LABELS or not word_next


def extract_choice(problem: Problem, completion: str) -> str | None:
    """The label of the option ``completion`` chose, or ``None``."""
    labels = _labels(problem)
    alt = "|".join(re.escape(lab) for lab in sorted(labels, key=len, reverse=True))
    if not alt:
        return None
    label = rf"(?P<open>\()?(?P<label>{alt})(?P<close>\))?(?![\w])"
    stated = [m for m in re.finditer(rf"answer(?: is)?\s*[:\-]?\s*{label}", completion, flags=re.IGNORECASE)
              if _is_label(m, completion)]  # fmt: skip
    if stated:
        hit = stated[-1].group("label")
        return next((lab for lab in labels if lab.lower() == hit.lower()), None)
    lead = re.match(rf"\s*{label}(?=[.:)\s]|$)", completion)
    if lead and _is_label(lead, completion):
        return lead.group("label")
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
