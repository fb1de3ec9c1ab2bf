"""Notebook 08's conditional tabular GAN: how its TSTR gap moves from epoch to epoch, for the
generator being trained and for its exponential moving average (EMA), the copy the notebook samples.

Trains the notebook's own ``TableGAN`` (its tagged cells are executed, so this is the code the
notebook trains, EMA included) on the notebook's loan table and split, for each seed given,
and every ``--every`` epochs from ``--first`` on measures the TSTR gap (TRTR AUC − TSTR AUC,
"grade D or worse", the notebook's ``tm.utility_auc``) of rows sampled from ``generator`` and from
``ema_generator``. Prints a table and writes it to ``--out``.

    python experiments/08_table_gan_epochs.py            # the study cited by notebook 08
    python experiments/08_table_gan_epochs.py --smoke    # tiny, checks that it runs
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "08_table_gan_epochs.json"


def code_cells():
    """The code cells of notebook 08."""
    import nbformat

    return [c for c in nbformat.read(ROOT / "notebooks" / "08_finance.ipynb", as_version=4).cells
            if c.cell_type == "code"]


def notebook_cells(*tags):
    """The names defined by 08's code cells with these tags, run in a namespace with its imports."""
    import keras
    import pandas as pd
    import tensorflow as tf

    import labkit
    from labkit import tabular as tb
    from labkit import timeseries as ts
    from labkit import training
    ns = {"np": np, "pd": pd, "keras": keras, "tf": tf, "labkit": labkit, "ts": ts, "tb": tb,
          "training": training, "seed": 0}
    for cell in code_cells():
        if set(tags) & set(cell.metadata.get("tags", [])):
            exec(compile(cell.source, "08_finance.ipynb", "exec"), ns)
    return ns


def notebook_cell(text):
    """The source of 08's one code cell that contains ``text``."""
    [source] = [c.source for c in code_cells() if text in c.source]
    return source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run (< 60 s), checks that it runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result file (JSON)")
    parser.add_argument("--epochs", type=int, default=250)
    parser.add_argument("--first", type=int, default=50, help="first epoch measured")
    parser.add_argument("--every", type=int, default=10, help="epochs between measurements")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="the notebook's seed (its split and training), one run each")
    args = parser.parse_args(argv)

    from labkit.profiles import NOTEBOOKS

    cfg = NOTEBOOKS["08_finance"].resolve("smoke" if args.smoke else "lab")
    epochs, first, every = (4, 2, 2) if args.smoke else (args.epochs, args.first, args.every)
    seeds = args.seeds[:1] if args.smoke else args.seeds
    started, runs = time.perf_counter(), {}
    for seed in seeds:
        runs[seed] = gaps_over_epochs(seed, 2000 if args.smoke else cfg["table_rows"], epochs, first, every)
    lab_epochs = min(cfg["table_epochs"], epochs)
    every_row = [r for run in runs.values() for r in run["rows"]]
    summary = {f"epochs {first}-{epochs}": _summary(every_row),
               f"epochs {lab_epochs}-{epochs}": _summary([r for r in every_row if r["epoch"] >= lab_epochs])}
    print(f"\nTSTR gap, seeds {seeds} (the lab profile trains {cfg['table_epochs']} epochs)")
    for span, by_generator in summary.items():
        for name, s in by_generator.items():
            print(f"{span:15s} {name:5s} mean {s['mean']:.3f}  sd {s['sd']:.3f}  min {s['min']:.3f}  "
                  f"max {s['max']:.3f}  <= 0.05 at {s['share_at_most_0.05']:.0%}, <= 0.06 at {s['share_at_most_0.06']:.0%}")
    result = {"study": "08_table_gan_epochs", "smoke": args.smoke, "seeds": seeds, "epochs": epochs,
              "first": first, "every": every, "lab_epochs": cfg["table_epochs"], "runs": runs,
              "summary": summary, "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {args.out}")


def gaps_over_epochs(seed, table_rows, epochs, first, every):
    """Train the notebook's TableGAN with this seed; the TSTR gap of both generators every `every` epochs."""
    import keras

    import labkit
    from labkit import table_metrics as tm
    from labkit import tabular as tb
    from labkit import training
    from labkit.exercises.nb08 import gradient_penalty

    ns = notebook_cells("table-gan")
    # the notebook's loan table, spec and split: its cell of Case 2.1, run here with this seed
    with tempfile.TemporaryDirectory() as folder:
        data = {"np": np, "labkit": labkit, "tb": tb, "seed": seed, "cfg": SimpleNamespace(table_rows=table_rows),
                "run": SimpleNamespace(path=lambda name: Path(folder) / name)}   # its CSV copies go to a temp folder
        exec(compile(notebook_cell("spec = tb.TableSpec("), "08_finance.ipynb", "exec"), data)
    spec, train, holdout = data["spec"], data["table_train"], data["table_holdout"]
    sampler = tb.ConditionSampler(spec, seed=seed, target="grade", target_share=0.3).fit(train)
    positive = ["D", "E", "F", "G"]
    trtr = tm.utility_auc(train, holdout, spec, "grade", positive, seed=seed)
    keras.utils.set_random_seed(seed)
    model = ns["TableGAN"](ns["build_table_generator"](64, sampler.cond_width, sampler.width),
                           ns["build_table_critic"](sampler.width + sampler.cond_width), sampler, gradient_penalty)
    per_epoch = len(sampler.data) // 500

    def gap(generator):
        synth = sampler.sample(generator, len(train), condition="grade", seed=1)
        return trtr - tm.utility_auc(synth, holdout, spec, "grade", positive, seed=seed)

    rows = []

    class Track(training.Callback):
        def on_step_end(self, model, history, step):
            epoch, rest = divmod(step, per_epoch)
            if rest == 0 and epoch >= first and (epoch - first) % every == 0:
                rows.append({"seed": seed, "epoch": epoch, "live": gap(model.generator), "ema": gap(model.ema_generator)})
                print(f"seed {seed}  epoch {epoch:3d}  live {rows[-1]['live']:.3f}  ema {rows[-1]['ema']:.3f}", flush=True)

    training.fit(model, sampler.data, epochs * per_epoch, batch_size=500, seed=seed, callbacks=[Track()],
                 desc="tabular GAN", show_progress=False)
    return {"trtr": trtr, "ema_decay": model.ema, "rows": rows}


def _summary(rows):
    """Mean, sd, range and the share of checkpoints at or below 0.05 and 0.06, per generator."""
    out = {}
    for name in ("live", "ema"):
        gaps = np.array([r[name] for r in rows])
        out[name] = {"checkpoints": len(gaps), "mean": float(gaps.mean()), "sd": float(gaps.std()),
                     "min": float(gaps.min()), "max": float(gaps.max()),
                     "share_at_most_0.05": float(np.mean(gaps <= 0.05)), "share_at_most_0.06": float(np.mean(gaps <= 0.06))}
    return out


if __name__ == "__main__":
    main()
