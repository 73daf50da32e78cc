"""Matplotlib figures for reports, headless (Agg backend): one way to open and to save a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_figure(size: tuple[float, float] = (6.4, 4.2)) -> tuple[Any, Any]:
    """``(fig, ax)`` on the non-interactive Agg backend (no display on CI or a GPU node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Lay out, write ``path`` as PNG (parents created), close the figure; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
