"""Progress bars for loops and Keras training (tqdm; a widget in Jupyter, text elsewhere)."""
from __future__ import annotations

import os


def _tqdm():
    if os.environ.get("LABKIT_PLAIN_PROGRESS"):
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm


def progress(iterable=None, total=None, desc=None, **kwargs):
    """Wrap an iterable in a progress bar (``LABKIT_PLAIN_PROGRESS=1`` forces a text bar)."""
    bar = _tqdm()(iterable, total=total, desc=desc, mininterval=0.5, **kwargs)
    box = getattr(bar, "container", None)           # the Jupyter widget: [description, bar, counts]
    if box is not None:
        box.children[0].layout.flex = "0 0 auto"    # the description keeps its width, on one line
    return bar


def keras_progress(epochs: int, desc: str = "training"):
    """A Keras callback showing one bar over epochs with the latest loss and metrics.

    Put it after a checkpoint callback (``training.KerasCheckpoint``): the bar then starts at the
    epochs restored from the checkpoint."""
    import keras

    class _Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            done = min(getattr(self.model, "_initial_epoch", None) or 0, epochs)
            self.bar = progress(total=epochs, desc=desc, initial=done)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in (logs or {}).items()}, refresh=False)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return _Progress()
