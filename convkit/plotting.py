"""Training curves: a PNG when matplotlib is installed (the `demo` extra), a plain-text chart otherwise."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

CURVES = (("loss", "val_loss"), ("accuracy", "val_accuracy"))


def text_chart(values: Sequence[float], *, width: int = 50, label: str = "") -> str:
    """One line per epoch: the value and a bar scaled between the series' minimum and maximum."""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    rows = [f"{label}  (min {lo:.4g}, max {hi:.4g})"]
    for epoch, value in enumerate(values, start=1):
        rows.append(f"  {epoch:4d} {value:10.4f} |{'#' * (1 + round((value - lo) / span * (width - 1)))}")
    return "\n".join(rows)


def write_training_curves(history: Dict[str, List[float]], out_dir: os.PathLike) -> Path:
    """Writes out_dir/curves.png (matplotlib) or out_dir/curves.txt (without it); returns the path written.

    history: per-epoch lists as in History.history ('loss', 'accuracy', 'val_loss', 'val_accuracy', ...)."""
    out_dir = Path(out_dir)
    series = [[key for key in pair if history.get(key)] for pair in CURVES]
    series = [keys for keys in series if keys]
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        path = out_dir / "curves.txt"
        charts = [text_chart(history[key], label=key) for keys in series for key in keys]
        _write_atomic(path, ("\n\n".join(charts) + "\n").encode())
        return path
    fig, axes = plt.subplots(1, max(len(series), 1), figsize=(5 * max(len(series), 1), 3.5), squeeze=False)
    for ax, keys in zip(axes[0], series):
        for key in keys:
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(keys[0])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = out_dir / "curves.png"
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
