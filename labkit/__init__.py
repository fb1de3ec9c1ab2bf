"""labkit — the helper package of the Synthetic Data Lab workbook.

The notebooks hold the ideas; labkit holds what is not the lesson. Its modules, by role:

Course machinery (running a notebook and keeping what it measured)

- ``run``           the run contract: :func:`start` checks parameters, seeds, opens the output folder
- ``params``        parameter checks: one clear error naming the parameter, the value and what is allowed
- ``profiles``      every notebook's parameters and smoke / lab / full values, declared once
- ``files``         atomic writing of JSON, arrays, models and figures
- ``progress``      progress bars for loops and Keras training (plain text in CI)
- ``plots``         image grids, training curves and learning curves
- ``exercises``     check / hint / solution exercises, one module per notebook
- ``course``        headless runs (each in a ``_papermill_child`` process), student editions and sweeps; ``__main__`` is the command line
- ``report``        the teacher's HTML / Markdown report of the output folders

Data

- ``data``          offline loaders, each with a data card
- ``prep``          data preparation: quality reports, shift checks, learning curves
- ``guide``         notebook 00's course map and glossary, and the course wrap-up table

The training contract

- ``training``      one training loop for every model: checkpoint, exact resume, history, snapshots (and the same checkpoint for Keras' ``fit``)

Metrics

- ``image_metrics`` a reference digit classifier and the metrics on its features (FID, KID, coverage)
- ``table_metrics`` synthetic tables measured: column shapes, pair trends, utility
- ``nearest``       one nearest-neighbour distance for near-copies, DCR and membership attacks
- ``quality``       one vocabulary (fidelity, coverage, utility, privacy), its reports and data cards
- ``privacy``       the distance attack, a membership AUC with its interval, DP-SGD's ε accounting

Topic code (the notebook that uses it)

- ``augment``       image augmentation in a reproducible ``tf.data`` pipeline, DiffAugment (03, 07)
- ``augment_text``  text augmentation: EDA, sentence transformations, generated sentences (03)
- ``audio``         audio augmentation: noise, speed, pitch and time shifts (03)
- ``rl``            reinforcement-learning episodes from gymnasium (01)
- ``gan``           the GAN pieces reused after 04: DCGAN builders and step, WGAN-GP loss, pixel ranges
- ``vae``           the conditional VAE that 09 trains and the fixed test binarisation (05)
- ``attacks``       JSMA, and copies of 06's FGSM and PGD for the ART cross-check
- ``defences``      the feature-squeezing detector (06)
- ``stylegan``      a StyleGAN-style generator small enough for a CPU (07)
- ``faces``         the four-step face case: data, classifier, measurements (07)
- ``timeseries``    market series: windows, TimeGAN scores, stylised facts, GARCH, block bootstrap (08)
- ``tabular``       synthetic tables: mode-specific normalisation, training-by-sampling, two baselines (08, 09)
"""
from .run import quiet_tensorflow as _quiet

_quiet()

from . import data, exercises, files, params, plots, profiles  # noqa: E402
from .exercises import ____  # noqa: E402
from .params import ParameterError  # noqa: E402
from .progress import keras_progress, progress  # noqa: E402
from .run import Run, seed_everything, start  # noqa: E402

__version__ = "0.1.0"
__all__ = ["start", "Run", "seed_everything", "ParameterError", "progress", "keras_progress",
           "data", "exercises", "files", "params", "plots", "profiles", "____", "show_source"]


def show_source(obj) -> None:
    """Display the source code of a labkit function or class in the notebook (the idea, visible)."""
    import inspect

    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{inspect.getsource(obj)}\n```"))
