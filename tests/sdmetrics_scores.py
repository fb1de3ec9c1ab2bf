"""SDMetrics' QualityReport on CSV tables; run in the SDMetrics venv by tests/test_crosschecks.py.

    python tests/sdmetrics_scores.py FOLDER

FOLDER holds ``metadata.json`` ({"columns": {name: {"sdtype": "numerical" | "categorical"}}}),
``real.csv`` and one or more ``synthetic_*.csv``; the scores go to ``FOLDER/sdmetrics.json``:
{synthetic name: {"default" | "every_pair": {"column_shapes": {column: score}, "column_pair_trends": {"a|b": score},
"properties": {name: score}, "version": sdmetrics version}}}.
"""
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import pandas as pd
import sdmetrics
from sdmetrics.reports.single_table import QualityReport


def read(path, metadata):
    categorical = [c for c, m in metadata["columns"].items() if m["sdtype"] == "categorical"]
    return pd.read_csv(path, dtype={c: "object" for c in categorical})


def scores(real, synthetic, metadata, every_pair=False):
    """Per-column and per-pair scores of SDMetrics' quality report.

    ``every_pair``: score every column pair, as the classic report did (the default report since
    0.2x scores only pairs whose real correlation or association passes a threshold, NaN otherwise).
    """
    report = QualityReport()
    if every_pair:
        report.real_correlation_threshold = 0
        report.real_association_threshold = 0
        report.num_rows_subsample = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real, synthetic, metadata, verbose=False)
    shapes = report.get_details("Column Shapes")
    pairs = report.get_details("Column Pair Trends")
    return {
        "column_shapes": {r["Column"]: float(r["Score"]) for _, r in shapes.iterrows()},
        "column_shape_metrics": {r["Column"]: r["Metric"] for _, r in shapes.iterrows()},
        "column_pair_trends": {f"{r['Column 1']}|{r['Column 2']}": float(r["Score"]) for _, r in pairs.iterrows()},
        "pairs_meeting_threshold": [f"{r['Column 1']}|{r['Column 2']}" for _, r in pairs.iterrows()
                                    if r["Meets Threshold?"] is True],
        "column_pair_metrics": {f"{r['Column 1']}|{r['Column 2']}": r["Metric"] for _, r in pairs.iterrows()},
        "properties": {r["Property"]: float(r["Score"]) for _, r in report.get_properties().iterrows()},
        "version": sdmetrics.__version__,
        "pandas": pd.__version__,
        "torch": importlib.util.find_spec("torch") is not None,
    }


def main(folder):
    folder = Path(folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    real = read(folder / "real.csv", metadata)
    out = {}
    for path in sorted(folder.glob("synthetic_*.csv")):
        synthetic = read(path, metadata)
        out[path.stem] = {"default": scores(real, synthetic, metadata),
                          "every_pair": scores(real, synthetic, metadata, every_pair=True)}
    (folder / "sdmetrics.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
