"""Plotting helpers: image grids, training curves, and a latent-space explorer (ipywidgets)."""
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


def _decimals(step: float) -> int:
    text = f"{step:g}"
    return len(text.split(".")[1]) if "." in text else 0


def latent_explorer(decode, dims: int = 2, limit: float = 3.0, step: float = 0.1, labels=None,
                    label_name: str = "label", label=None, size: float = 2.2):
    """Explore a decoder with sliders: one per latent coordinate (and a dropdown for a class label).

    ``decode(z)`` — or ``decode(z, label)`` when ``labels`` lists the classes — receives ``z`` of
    shape ``(1, dims)`` (float32) and returns one image ``(H, W)`` or ``(H, W, 1)`` in [0, 1].
    Each change of a control (on release: ``continuous_update=False``) decodes the point and shows
    the image beside the controls. Returns the widget; end a cell with it to display it. The first
    image is drawn at once, so a notebook viewer without widgets still shows the decoded origin.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .params import check_int

    dims = check_int("dims", dims, minimum=1, maximum=8)
    sliders = [widgets.FloatSlider(value=0.0, min=-limit, max=limit, step=step, description=f"z{i + 1}",
                                   continuous_update=False) for i in range(dims)]
    controls = list(sliders)
    if labels is not None:
        labels = list(labels)
        box = widgets.Dropdown(options=labels, value=labels[0] if label is None else label, description=label_name)
        controls.insert(0, box)
    view = widgets.Output()
    digits = _decimals(step)

    def show(change=None):
        z = np.array([[s.value for s in sliders]], dtype="float32")
        image = np.asarray(decode(z) if labels is None else decode(z, box.value))
        point = "z = (" + ", ".join(f"{v:.{digits}f}" for v in z[0]) + ")"
        with view:
            view.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(size, size))
            ax.imshow(np.squeeze(image), cmap="gray", vmin=0, vmax=1)
            ax.set_title(point if labels is None else f"{box.value} at {point}", fontsize=8)
            ax.axis("off")
            display(fig)
            plt.close(fig)

    for control in controls:
        control.observe(show, names="value")
    show()
    return widgets.HBox([widgets.VBox(controls), view])
