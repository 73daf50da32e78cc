"""``from negrl import X``: every public name resolves lazily, and ``import negrl`` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import negrl


def test_every_public_name_resolves_to_its_defining_module():
    assert len(negrl.__all__) >= 30
    for name in negrl.__all__:
        obj = getattr(negrl, name)
        assert getattr(obj, "__name__", name) == name, name  # the object itself, not a module of that name


def test_import_negrl_does_not_load_torch_and_an_unknown_name_is_an_attribute_error():
    code = "import sys, negrl; print('torch' in sys.modules, 'negrl.experiments' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    with pytest.raises(AttributeError, match="no attribute 'PipelineConfig'"):
        negrl.PipelineConfig  # noqa: B018  (the harness is not public API)


def test_the_readme_snippet_imports_only_public_names():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = text.split("## In Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    imports = [n for n in ast.walk(ast.parse(block)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports and all(isinstance(n, ast.ImportFrom) and n.module == "negrl" for n in imports)
    assert {a.name for n in imports for a in n.names} <= set(negrl.__all__)
