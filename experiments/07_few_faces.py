"""Notebook 07's four-step face case over several draws of the few real faces.

For each draw: pick ``--faces`` real training faces (the notebook's draw for seed s is draw s),
train the StyleGAN-style generator on those faces only (``labkit.stylegan``, the same design as the
notebook's cells; a test checks the two build the same architecture), then train the face /
non-face classifier on (a) the few faces + the 70 non-face training crops, (b) plus generated
faces, (c) plus augmented copies of the few faces, with several classifier seeds, and test on the
60 held-out real crops. Prints a table (mean accuracy per draw and condition, and over all draws)
and writes it to ``--out``.

    python experiments/07_few_faces.py            # the study cited by notebook 07
    python experiments/07_few_faces.py --smoke    # tiny, checks that it runs
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "07_few_faces.json"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run (< 60 s), checks that it runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result file (JSON)")
    parser.add_argument("--draws", type=int, default=4, help="draws of the few real faces (seeds 0..draws-1)")
    parser.add_argument("--faces", type=int, default=None, help="real faces per draw (default: the lab profile's)")
    parser.add_argument("--classifier-seeds", type=int, default=2)
    args = parser.parse_args(argv)

    from labkit import faces, stylegan, training
    from labkit.profiles import NOTEBOOKS

    cfg = NOTEBOOKS["07_faces"].resolve("smoke" if args.smoke else "lab")
    n_faces = args.faces or cfg["case_faces"]
    draws = 1 if args.smoke else args.draws
    classifier_seeds = 1 if args.smoke else args.classifier_seeds
    data = faces.face_data(holdout_fraction=0.3, size=32, seed=0)
    faces_train = data["faces_train"]
    non_faces = data["x_train"][data["y_train"] == 0]
    rows, started = [], time.perf_counter()
    for draw in range(draws):
        few = np.random.default_rng([draw, 7]).choice(len(faces_train), n_faces, replace=False)
        few_faces = faces_train[np.sort(few)]
        gan = stylegan.build(seed=draw)
        training.fit(gan, few_faces, steps=cfg["case_gan_steps"], batch_size=cfg["batch_size"], seed=draw,
                     desc=f"draw {draw}: StyleGAN on {n_faces} faces")
        generated = stylegan.sample_images(gan.ema_generator, cfg["extra_faces"], seed=1)
        augmented = faces.augmented_faces(few_faces, cfg["extra_faces"], seed=draw)
        x = np.concatenate([few_faces, non_faces])
        y = np.concatenate([np.ones(len(few_faces), int), np.zeros(len(non_faces), int)])
        case = faces.case_study(x, y, data["x_holdout"], data["y_holdout"], generated, augmented,
                                seeds=range(draw, draw + classifier_seeds), steps=cfg["classifier_steps"])
        rows.append({"draw": draw, **{c: float(np.mean(v)) for c, v in case.items()}, "per_seed": case})
        print(f"draw {draw}: " + ", ".join(f"{c} {np.mean(v):.3f}" for c, v in case.items()), flush=True)
        _write(args.out, {"study": "07_few_faces", "partial": True, "rows": rows})
    summary = {c: {"mean": float(np.mean([r[c] for r in rows])), "min": float(np.min([r[c] for r in rows])),
                   "max": float(np.max([r[c] for r in rows]))} for c in faces.CONDITIONS}
    print(f"\n{n_faces} real faces, {draws} draws x {classifier_seeds} classifier seeds "
          f"({cfg['extra_faces']} extra faces, {cfg['case_gan_steps']} GAN steps):")
    print(f"{'condition':24s} {'mean':>6s} {'min':>6s} {'max':>6s}")
    for c, s in summary.items():
        print(f"{c:24s} {s['mean']:6.3f} {s['min']:6.3f} {s['max']:6.3f}")
    result = {"study": "07_few_faces", "smoke": args.smoke, "faces": n_faces, "draws": draws,
              "classifier_seeds": classifier_seeds, "extra_faces": cfg["extra_faces"],
              "gan_steps": cfg["case_gan_steps"], "classifier_steps": cfg["classifier_steps"],
              "rows": rows, "summary": summary, "seconds": round(time.perf_counter() - started, 1)}
    _write(args.out, result)
    print(f"written: {args.out}")


def _write(path, result):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
