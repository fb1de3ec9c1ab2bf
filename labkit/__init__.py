"""labkit — the helper package of the Synthetic Data Lab workbook.

Modules, each named after what it holds:

- ``run``       the run contract: :func:`start` validates parameters, seeds, opens the output folder
- ``params``    parameter validation with clear errors
- ``files``     atomic writing of JSON, arrays, models and figures
- ``data``      offline data loaders with data cards
- ``rl``        reinforcement-learning episodes from gymnasium
- ``plots``     image grids and training curves
- ``progress``  progress bars for loops and Keras
- ``checkpoints`` resumable training state
- ``training``  the training contract: a model's ``train_step`` + ``fit`` (checkpoints, exact resume, callbacks)
- ``course``    headless runs, reports, student editions, sweeps (``python -m labkit``)
- ``exercises`` check / hint / solution exercises
"""
from .run import quiet_tensorflow as _quiet

_quiet()

from . import data, exercises, files, params, plots  # noqa: E402
from .exercises import ____  # noqa: E402
from .params import ParameterError  # noqa: E402
from .progress import keras_progress, progress  # noqa: E402
from .run import Run, seed_everything, start  # noqa: E402

__version__ = "0.1.0"
__all__ = ["start", "Run", "seed_everything", "ParameterError", "progress", "keras_progress",
           "data", "exercises", "files", "params", "plots", "____", "show_source"]


def show_source(obj) -> None:
    """Display the source code of a labkit function or class in the notebook (the idea, visible)."""
    import inspect

    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{inspect.getsource(obj)}\n```"))
