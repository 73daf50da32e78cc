"""One-way data flow inside ``negrl``, enforced by scanning every import statement (function-level ones included).

The rules:

- no import cycle between ``negrl`` modules (a lazy import inside a function still counts: it hides a circle, it
  does not remove it);
- nothing in the library imports the harness ``negrl.experiments`` (the harness may import anything);
- ``negrl.records`` and ``negrl.losses`` import only the standard library and torch (they are the leaves everything
  else builds on).

``import_graph`` is also run on small planted packages, so the checks are shown to fail on a violation.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
HARNESS = "negrl.experiments"
LEAVES = {"negrl.records": {"torch"}, "negrl.losses": {"torch"}}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path, module: str) -> list[str]:
    """Absolute names of everything ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names += [base] + [f"{base}.{a.name}" for a in node.names]
    return names


def import_graph(root: Path, package: str = "negrl") -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(edges between the package's modules, top-level external packages each module imports)``."""
    files = {_module_name(root, p): p for p in sorted((root / package).rglob("*.py"))}
    edges: dict[str, set[str]] = {m: set() for m in files}
    external: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for name in _imported_names(path, mod):
            if name.split(".")[0] != package:
                external[mod].add(name.split(".")[0])
                continue
            target = name
            while target and target not in files:  # `from negrl.x import some_function` -> negrl.x
                target = target.rpartition(".")[0]
            if not target or target == mod:
                continue
            if path.name == "__init__.py" and target.startswith(mod + "."):
                continue  # a package's face re-exporting its own children (lazily or not) is no cycle
            edges[mod].add(target)
    return edges, external


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def harness_imports(edges: dict[str, set[str]], harness: str = HARNESS) -> dict[str, list[str]]:
    """Library modules (outside ``harness``) that import the harness."""
    inside = lambda m: m == harness or m.startswith(harness + ".")  # noqa: E731
    return {m: sorted(t for t in ts if inside(t)) for m, ts in edges.items()
            if not inside(m) and any(inside(t) for t in ts)}


def leaf_violations(edges: dict[str, set[str]], external: dict[str, set[str]]) -> dict[str, list[str]]:
    """Leaf modules importing anything beyond the standard library and what ``LEAVES`` allows."""
    bad: dict[str, list[str]] = {}
    for mod, allowed in LEAVES.items():
        if mod not in edges:
            continue
        extra = sorted(edges[mod]) + sorted(e for e in external[mod] - allowed
                                            if e not in sys.stdlib_module_names and e != "__future__")
        if extra:
            bad[mod] = extra
    return bad


# ------------------------------------------------------------------------------------------------ the real package


def test_negrl_has_no_import_cycles():
    edges, _ = import_graph(ROOT)
    assert len(edges) > 40, "the scan found too few modules: wrong root?"
    assert import_cycles(edges) == []


def test_library_never_imports_the_harness():
    edges, _ = import_graph(ROOT)
    assert any(m.startswith(HARNESS) for m in edges), "negrl.experiments is missing: the rule would be vacuous"
    assert harness_imports(edges) == {}


def test_records_and_losses_import_only_stdlib_and_torch():
    edges, external = import_graph(ROOT)
    assert set(LEAVES) <= set(edges)
    assert leaf_violations(edges, external) == {}


# ------------------------------------------------------------------------------- planted violations are caught


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("lazy", [False, True])
def test_a_planted_cycle_is_found_even_behind_a_function_level_import(tmp_path, lazy):
    back = "def f():\n    from negrl.a import x\n    return x\n" if lazy else "from negrl.a import x\n"
    root = _plant(tmp_path, {"negrl/__init__.py": "", "negrl/a.py": "from negrl.b import f\nx = 1\n",
                             "negrl/b.py": back, "negrl/c.py": "from . import a\n"})
    assert import_cycles(import_graph(root)[0]) == [["negrl.a", "negrl.b"]]


def test_a_planted_harness_import_and_leaf_import_are_found(tmp_path):
    root = _plant(tmp_path, {
        "negrl/__init__.py": "def __getattr__(name):\n    from negrl import records\n    return records\n",
        "negrl/experiments/__init__.py": "", "negrl/experiments/run.py": "from negrl.losses import f\n",
        "negrl/steps.py": "def g():\n    from .experiments import run\n",
        "negrl/records.py": "import json\nimport torch\nimport numpy\n",
        "negrl/losses.py": "from negrl.records import x\n",
    })
    edges, external = import_graph(root)
    assert import_cycles(edges) == []  # the package face's lazy import of its own child is no cycle
    assert harness_imports(edges) == {"negrl.steps": ["negrl.experiments", "negrl.experiments.run"]}
    assert leaf_violations(edges, external) == {"negrl.losses": ["negrl.records"], "negrl.records": ["numpy"]}


def test_nothing_cites_design_notes_outside_the_repository():
    """Docstrings, configs and docs send readers only to files the repository has."""
    import re

    cite = re.compile(r"DESIGN\.md|reference/\w+\.md|shared/reference")
    files = [p for d in ("negrl", "recipes", "eval", "perf", "docs") for p in (ROOT / d).rglob("*")
             if p.suffix in (".py", ".md", ".yaml")] + [ROOT / "README.md"]
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in files
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if cite.search(line)]
    assert hits == []


def test_builders_do_not_reach_into_trainers():
    """Records → TRL rows comes before training: builders share token code with trainers through
    ``negrl.completion_tokens``, never by importing a trainer module."""
    edges, _ = import_graph(ROOT)
    sideways = {m: sorted(t for t in ts if t.startswith("negrl.trainers"))
                for m, ts in edges.items() if m.startswith("negrl.builders")}
    assert {m: ts for m, ts in sideways.items() if ts} == {}
