"""Figures of DRA training."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_learning_curves(curves: np.ndarray, refs: dict[str, float], path: Path) -> None:
    """Greedy-return learning curves (one line per seed) with the baselines' returns as dashed lines; PNG at ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4))
    ax = fig.subplots()
    x = np.arange(1, curves.shape[1] + 1)
    for i, c in enumerate(curves):
        ax.plot(x, c, lw=1, alpha=0.8, label=f"DQN seed {i}")
    for name, v in refs.items():
        colours = {"static": "gray", "greedy": "orange", "optimum": "k", "upper_bound": "b", "random": "red"}
        labels = {"optimum": "optimum ≥ (best reference)", "upper_bound": "optimum ≤ (LP bound)"}
        if name in colours and isinstance(v, float):
            ax.axhline(v, ls="--", lw=1, color=colours[name], label=labels.get(name, name))
    ax.set_xlabel("episode")
    ax.set_ylabel("greedy return (fixed evaluation episodes)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
