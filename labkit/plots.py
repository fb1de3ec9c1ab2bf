"""Plotting helpers: image grids, training curves and learning curves."""
from __future__ import annotations

import numpy as np


def image_grid(images, labels=None, ncols: int = 10, title: str | None = None, size: float = 1.0,
               cmap: str = "gray", vmin=0.0, vmax=1.0):
    """Show images (N, H, W) or (N, H, W, 1/3) in a grid, each with an optional label above it."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * (1.25 if labels is not None else 1)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(history: dict, title: str | None = None, xlabel: str = "epoch"):
    """Plot each series (list) of a history dict; ``val_*`` shares a panel with its twin; numbers are skipped."""
    import matplotlib.pyplot as plt

    names = [k for k, v in history.items() if not k.startswith("val_") and np.ndim(v) == 1]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes.flat, names):
        ax.plot(np.arange(1, len(history[name]) + 1), history[name], label="train")
        if f"val_{name}" in history:
            ax.plot(np.arange(1, len(history[name]) + 1), history[f"val_{name}"], label="validation")
            ax.legend()
        ax.set_xlabel(xlabel)
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
