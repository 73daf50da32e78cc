"""The path-star graph task (Bachmann & Nagarajan 2024, "The pitfalls of next-token prediction").

A star graph: ``D`` arms of ``L`` nodes each radiate from a start node ``s``; node ids are distinct numbers drawn from
a fixed id range. The prompt lists the edges in shuffled order and asks for the path from ``s`` to the leaf ``t`` of
one arm; the solution is that arm, one node per line, then an answer line::

    G: 3>7 1>4 7>5 3>2 4>0 2>8 3>1 | 3-0      ← prompt: shuffled edges "u>v", then "s-t" (ends with "\\n")
    1                                         ← step 0: the arm choice — the *critical step*
    4                                         ← later steps: follow the edge out of the previous node
    0
    Answer: 0                                 ← final line (then <eos> in training)

Teacher-forced training tends to learn the "Clever Hans" shortcut: each later node is found by copying the node after
``prev>`` in the prompt, which makes the later steps trivial given the first and leaves the arm choice (which needs
a backward search from ``t``) at chance, ``1/D``. ``first_step_stats`` measures exactly that: first-step accuracy and
accuracy of the later steps given a right first step.

Because the graph is a star, the only valid path from ``s`` that ends at ``t`` is ``t``'s arm, so the verifier is an
exact check, and ``check_steps`` gives ground-truth step correctness (line ``i`` is right iff it is the ``i``-th node
of ``t``'s arm and every earlier line is right). Train and test splits never share a graph (whatever the target).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from negrl.records import Problem, Verdict
from negrl.tasks.sampling import disjoint_splits, distinct_problems


ANSWER_RE = re.compile(r"Answer:\s*(-?\d+)")
NODE_RE = re.compile(r"^\s*(\d+)\s*$")


@dataclass(frozen=True)
class PathStarConfig:
    """Knobs of the path-star task.

    Attributes:
        arms: ``D``, the number of arms (chance of a right first step is ``1/D``).
        arm_length: ``L``, nodes per arm (the path has ``L`` step lines).
        min_id: Smallest node id.
        max_id: Largest node id; each graph uses ``D * L + 1`` distinct ids from ``[min_id, max_id]``. With
            ``max_id <= 9`` every node is one character of the char tokenizer (shortest sequences, fastest on CPU).
    """

    arms: int = 2
    arm_length: int = 2
    min_id: int = 0
    max_id: int = 49

    def __post_init__(self) -> None:
        if self.arms < 2 or self.arm_length < 1:
            raise ValueError(f"need arms >= 2 and arm_length >= 1, got arms={self.arms}, arm_length={self.arm_length}")
        if self.min_id < 0:
            raise ValueError(f"min_id must be >= 0, got {self.min_id}")
        if self.max_id - self.min_id + 1 < self.n_nodes:
            raise ValueError(
                f"id range [{self.min_id}, {self.max_id}] has fewer than the {self.n_nodes} ids a graph needs "
                f"(arms * arm_length + 1)"
            )

    @property
    def n_nodes(self) -> int:
        return self.arms * self.arm_length + 1

    @property
    def name(self) -> str:
        return f"path_star:D{self.arms}L{self.arm_length}ids{self.min_id}-{self.max_id}"


def graph_key(start: int, arms: Sequence[Sequence[int]]) -> str:
    """Canonical id of a graph (independent of edge order and target): ``"s|a>b/c>d"`` with arms sorted."""
    return f"{start}|" + "/".join(sorted(">".join(str(n) for n in arm) for arm in arms))


def make_problem(rng: random.Random, cfg: PathStarConfig) -> Problem:
    ids = rng.sample(range(cfg.min_id, cfg.max_id + 1), cfg.n_nodes)
    start, rest = ids[0], ids[1:]
    arms = [rest[i * cfg.arm_length : (i + 1) * cfg.arm_length] for i in range(cfg.arms)]
    target_arm = rng.randrange(cfg.arms)
    target = arms[target_arm][-1]
    edges = [(u, v) for arm in arms for u, v in zip([start, *arm[:-1]], arm)]
    rng.shuffle(edges)
    prompt = "G: " + " ".join(f"{u}>{v}" for u, v in edges) + f" | {start}-{target}\n"
    key = graph_key(start, arms)
    meta = {"start": start, "target": target, "arms": arms, "target_arm": target_arm, "edges": edges, "graph": key}
    problem = Problem(
        problem_id=f"star:{key}:{target}", domain="path_star", prompt=prompt, answer=str(target), source=cfg.name,
        meta=meta,
    )
    problem.solution = gold_solution(problem)
    return problem


def gold_solution(problem: Problem) -> str:
    """The gold completion: the nodes of the target's arm, one per line, then ``Answer: t`` (no trailing newline)."""
    arm = problem.meta["arms"][problem.meta["target_arm"]]
    return "\n".join([*(str(n) for n in arm), f"Answer: {problem.meta['target']}"])


def generate_problems(
    cfg: PathStarConfig, n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset()
) -> list[Problem]:
    """``n`` problems on distinct graphs, deterministic in ``seed``.

    ``exclude`` holds graph keys (``meta["graph"]``) or problem ids (``"star:<graph>:<target>"``); a problem on an
    excluded graph is skipped, whatever its target.
    """
    graphs = {e.split(":")[1] if e.startswith("star:") else e for e in exclude}
    return distinct_problems(
        lambda rng: make_problem(rng, cfg), n, f"path_star/{cfg.name}/{seed}",
        key=lambda p: p.meta["graph"], exclude=graphs, what="graphs",
    )


def make_splits(cfg: PathStarConfig, n_train: int, n_test: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Train and test problems that never share a graph (the test set is drawn first, its graphs excluded)."""
    return disjoint_splits(generate_problems, cfg, n_train, n_test, seed, key=lambda p: p.meta["graph"])


def extract_answer(completion: str) -> str | None:
    """The node on the last ``Answer:`` line, or ``None``."""
    found = ANSWER_RE.findall(completion)
    return found[-1] if found else None


def parse_path(completion: str) -> tuple[list[int] | None, str]:
    """The node lines before the first ``Answer:`` line; ``(None, why)`` if one of them is not a node id."""
    nodes: list[int] = []
    for i, line in enumerate(completion.split("\n")):
        if line.strip().startswith("Answer:"):
            break
        if not line.strip():
            continue
        m = NODE_RE.match(line)
        if m is None:
            return None, f"line {i} is not a node id: {line[:30]!r}"
        nodes.append(int(m[1]))
    return nodes, ""


def _edge_set(problem: Problem) -> set[tuple[int, int]]:
    return {(int(u), int(v)) for u, v in problem.meta["edges"]}


def verify(problem: Problem, completion: str) -> Verdict:
    """Exact check (the verifier of the ``path_star`` domain): a valid path from ``s`` that ends at ``t``, and
    ``Answer: t``."""
    got = extract_answer(completion)
    if problem.answer is None:
        return Verdict(rollout_id="", correct=None, extracted=got, detail="no gold answer", verifier="path_star")
    nodes, why = parse_path(completion)
    target, edges = int(problem.answer), _edge_set(problem)
    if nodes is None:
        return Verdict(rollout_id="", correct=False, extracted=got, detail=why, verifier="path_star")
    path = [int(problem.meta["start"]), *nodes]
    bad = next((i for i, e in enumerate(zip(path, path[1:])) if e not in edges), None)
    if got is None:
        detail = "no 'Answer:' line"
    elif not nodes:
        detail = "empty path"
    elif bad is not None:
        detail = f"line {bad}: {path[bad]}>{path[bad + 1]} is not an edge"
    elif nodes[-1] != target:
        detail = f"path ends at {nodes[-1]}, not at the target {target}"
    elif int(got) != target:
        detail = f"answer {got} is not the target {target}"
    else:
        detail = ""
    return Verdict(rollout_id="", correct=detail == "", extracted=got, detail=detail, verifier="path_star")


def check_steps(problem: Problem, completion: str) -> list[bool]:
    """Ground-truth correctness of each line of ``completion``.

    Line ``i < L`` is right iff it names the ``i``-th node of the target's arm, i.e. it follows an existing edge on
    that arm from the previous (right) node; line 0 is the arm choice. Line ``L`` is right iff it is ``Answer: t``.
    Lines after the first wrong one are wrong (error propagation), and so is any extra non-blank line.
    """
    arm = [int(n) for n in problem.meta["arms"][problem.meta["target_arm"]]]
    labels: list[bool] = []
    ok = True
    for i, line in enumerate(completion.split("\n")):
        if ok:
            if i < len(arm):
                m = NODE_RE.match(line)
                ok = m is not None and int(m[1]) == arm[i]
            elif i == len(arm):
                m = ANSWER_RE.fullmatch(line.strip())
                ok = m is not None and int(m[1]) == int(problem.meta["target"])
            else:
                ok = line.strip() == ""
        labels.append(ok)
    return labels


def first_error(problem: Problem, completion: str) -> int | None:
    """Index of the first wrong line (0 = wrong arm), ``None`` if every line is right."""
    return next((i for i, ok in enumerate(check_steps(problem, completion)) if not ok), None)


def first_step_stats(problems: Sequence[Problem], completions: Sequence[str]) -> dict[str, float]:
    """The Clever-Hans diagnostic over paired problems and completions (fractions in [0, 1]).

    Returns ``acc`` (verifier accuracy), ``first`` (the arm choice is right), ``later_given_first`` (every later line
    is right given a right arm choice; ``nan`` if no first step is right), ``chance`` (``1/D``) and ``n``.
    """
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    n = len(problems)
    n_correct = n_first = n_later = 0
    for p, c in zip(problems, completions):
        labels = check_steps(p, c)
        n_correct += bool(verify(p, c).correct)
        if labels and labels[0]:
            n_first += 1
            n_later += all(labels)
    arms = len(problems[0].meta["arms"]) if problems else 0
    return {
        "acc": n_correct / max(n, 1),
        "first": n_first / max(n, 1),
        "later_given_first": n_later / n_first if n_first else float("nan"),
        "chance": 1 / arms if arms else float("nan"),
        "n": float(n),
    }
