"""One evaluation vocabulary for synthetic data, whatever the modality, and the documents built on it.

Every (real train, real holdout, synthetic) triple is judged on four questions:

- **fidelity** — does a synthetic sample look like a real one? (images: FID/KID in the features of
  :mod:`labkit.image_metrics`' reference classifier; tables: column shapes and column-pair trends
  of :mod:`labkit.table_metrics`);
- **coverage** — does the synthetic set reach all of the real data? (images: density/coverage and
  classes covered; tables: categories and numeric ranges reached, :func:`labkit.table_metrics.coverage`);
- **utility** — train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR);
- **privacy** — distance to closest record (DCR ratio, NN distance ratio, near-copy shares against
  the held-out floor, :mod:`labkit.nearest`) and a membership-inference attack (:mod:`labkit.privacy`),
  members drawn from the training set, non-members the holdout.

::

    report = synthetic_data_report(x_train, x_holdout, samples, classifier=clf,
                                   train_labels=y_train, holdout_labels=y_holdout,
                                   synthetic_labels=y_samples)           # images
    report = synthetic_data_report(train_df, holdout_df, synth_df, spec=spec,
                                   target="grade", positive=["A"])       # tables
    report                          # one page: a table of every measure with how to read it
    report.figure()                 # DCR histograms and the attack's ROC curve
    card = data_card(report, name=..., source=..., method=..., intended_use=...)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import nearest, privacy
from .params import ParameterError, check_int

SECTIONS = ("fidelity", "coverage", "utility", "privacy")

# how to read each measure: (better direction, one-line reading)
READINGS = {
    "fid": ("lower", "Fréchet distance of classifier features to held-out real images (0 = same)"),
    "kid": ("lower", "kernel (MMD²) version of FID, unbiased; ≈0 for two samples of one distribution"),
    "column_shapes": ("higher", "mean 1 − KS / 1 − TV distance of each column's distribution (1 = same)"),
    "column_pair_trends": ("higher", "mean similarity of pairwise correlations / contingency tables"),
    "density": ("≈1", "how crowded synthetic samples are around real ones (>1: piles on modes)"),
    "coverage": ("higher", "share of real neighbourhoods that hold a synthetic sample"),
    "classes_covered": ("higher", "classes holding ≥5% of samples, by the reference classifier"),
    "category_coverage": ("higher", "share of real categories that appear in the synthetic table"),
    "range_coverage": ("higher", "share of each numeric column's real range that synthetic values span"),
    "tstr": ("higher", "real-test score of a model trained on synthetic data"),
    "trtr": ("reference", "the same model trained on the real training data"),
    "tstr_over_trtr": ("higher", "utility kept: TSTR / TRTR (1 = as useful as the real data)"),
    "dcr_ratio": ("≈1", "median distance to closest training record, synthetic / held-out real (<1: copying)"),
    "nndr_synthetic_median": ("≈holdout", "closest / second-closest training distance of synthetic rows"),
    "nndr_holdout_median": ("reference", "the same for held-out real rows"),
    "near_copy_share_synthetic": ("≈holdout", "share closer to a training record than 95% of held-out rows"),
    "near_copy_share_holdout": ("reference", "the same for held-out rows (0.05 by construction)"),
    "exact_copy_share": ("0", "share of synthetic rows identical to a training row"),
    "mia_auc": ("≈0.5", "ROC AUC of a distance-based membership attack (0.5 = guessing)"),
    "mia_auc_low": ("≈0.5", "lower end of its 95% interval (> 0.5: members are identifiable)"),
    "mia_auc_high": ("", "upper end of its 95% interval"),
}


@dataclass
class SyntheticDataReport:
    """The four sections of measures for one (train, holdout, synthetic) triple."""

    modality: str
    sizes: dict
    measures: dict                      # {section: {name: value}}
    attack: privacy.AttackResult
    distances: dict = field(repr=False, default_factory=dict)   # DCR arrays for the figure
    scores: dict = field(repr=False, default_factory=dict)      # attack scores for the ROC curve

    def flat(self) -> dict:
        """``{name: value}`` over all sections (for ``run.record``)."""
        return {k: v for section in SECTIONS for k, v in self.measures.get(section, {}).items()}

    def table(self):
        """A DataFrame: section, measure, value, better, reading."""
        import pandas as pd

        rows = [{"section": s, "measure": k, "value": v, "better": READINGS.get(k, ("", ""))[0],
                 "reading": READINGS.get(k, ("", ""))[1]}
                for s in SECTIONS for k, v in self.measures.get(s, {}).items()]
        return pd.DataFrame(rows).set_index(["section", "measure"])

    def to_markdown(self) -> str:
        """The one-page report as Markdown."""
        sizes = ", ".join(f"{k} {v:,}" for k, v in self.sizes.items())
        lines = [f"**Synthetic data report** ({self.modality}; {sizes})", "",
                 "| section | measure | value | better | how to read it |", "|---|---|---|---|---|"]
        for s in SECTIONS:
            for k, v in self.measures.get(s, {}).items():
                better, reading = READINGS.get(k, ("", ""))
                lines.append(f"| {s} | `{k}` | {_fmt(v)} | {better} | {reading} |")
        lines += ["", f"Membership attack: {self.attack}."]
        return "\n".join(lines)

    def _repr_markdown_(self):
        return self.to_markdown()

    def figure(self, title: str | None = None):
        """DCR histograms (synthetic vs held-out real, to the training set) and the attack's ROC."""
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
        syn, hold = self.distances["synthetic"], self.distances["holdout"]
        bins = np.linspace(0, max(np.quantile(syn, 0.99), np.quantile(hold, 0.99)), 40)
        ax1.hist(hold, bins, alpha=0.6, density=True, label="held-out real → train")
        ax1.hist(syn, bins, alpha=0.6, density=True, label="synthetic → train")
        ax1.set(xlabel="distance to closest training record", ylabel="density")
        ax1.legend(fontsize=8)
        fpr, tpr = privacy.roc_curve_points(self.scores["members"], self.scores["non_members"])
        ax2.plot(fpr, tpr, label=f"AUC {self.attack.auc:.3f}")
        ax2.plot([0, 1], [0, 1], "k--", lw=0.8, label="guessing")
        ax2.set(xlabel="false-positive rate", ylabel="true-positive rate", title="membership attack")
        ax2.legend(fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig


def _fmt(v):
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


# --- utility ----------------------------------------------------------------------------------


def tstr_accuracy(x_synthetic, y_synthetic, x_test, y_test, alpha: float = 1.0) -> float:
    """Accuracy on real ``x_test`` of a ridge classifier (pixels in, one class out) trained on the
    labelled synthetic set. Ridge is fast, has no training randomness and reaches about 80% on
    4,000 real digits, so TSTR differences are the data's, not the optimiser's."""
    from sklearn.linear_model import RidgeClassifier

    xs = np.asarray(x_synthetic, dtype=np.float64).reshape(len(x_synthetic), -1)
    xt = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    ys = np.asarray(y_synthetic)
    if len(np.unique(ys)) < 2:
        raise ValueError("the synthetic labels hold a single class: nothing to learn")
    return float(RidgeClassifier(alpha=alpha).fit(xs, ys).score(xt, np.asarray(y_test)))


# --- privacy, for any encoded rows ------------------------------------------------------------


def _privacy_section(train_rows, holdout_rows, synthetic_rows, members: int, seed: int):
    """DCR/NNDR measures, the distance attack, and the arrays behind them."""
    rng = np.random.default_rng(seed)
    k = min(check_int("members", members, minimum=2), len(train_rows), len(holdout_rows))
    member_rows = train_rows[rng.choice(len(train_rows), k, replace=False)]
    non_rows = holdout_rows[rng.choice(len(holdout_rows), k, replace=False)]
    dcr = nearest.dcr_summary(synthetic_rows, train_rows, holdout_rows, quantile=0.05)
    scores = privacy.distance_attack_scores(np.concatenate([member_rows, non_rows]), synthetic_rows)
    attack = privacy.membership_auc(scores[:k], scores[k:])
    measures = {key: dcr[key] for key in ("dcr_ratio", "nndr_synthetic_median", "nndr_holdout_median",
                                          "near_copy_share_synthetic", "near_copy_share_holdout")}
    measures.update(mia_auc=attack.auc, mia_auc_low=attack.low, mia_auc_high=attack.high)
    return (measures, attack, {"synthetic": dcr["dcr_synthetic"], "holdout": dcr["dcr_holdout"]},
            {"members": scores[:k], "non_members": scores[k:]})


# --- images -----------------------------------------------------------------------------------


def image_report(train, holdout, synthetic, classifier, train_labels=None, holdout_labels=None,
                 synthetic_labels=None, members: int = 500, seed: int = 0) -> SyntheticDataReport:
    """The report for digit images (N, 28, 28[, 1]) in [0, 1]; ``classifier`` is the reference
    classifier of :func:`labkit.image_metrics.reference_classifier` (its features define FID/KID).
    Utility needs the three label arrays (a conditional generator's labels for the synthetic set)."""
    from . import image_metrics as im

    train, holdout, synthetic = (im.as_images(a, n) for a, n in
                                 ((train, "train"), (holdout, "holdout"), (synthetic, "synthetic")))
    f_real, f_fake = im.features(classifier, holdout), im.features(classifier, synthetic)
    measures = {"fidelity": {"fid": im.fid(f_real, f_fake), "kid": im.kid(f_real, f_fake, seed=seed)},
                "coverage": {**im.density_coverage(f_real, f_fake),
                             "classes_covered": im.classes_covered(im.predict_labels(classifier, synthetic))}}
    labels = (train_labels, holdout_labels, synthetic_labels)
    if all(lab is not None for lab in labels):
        tstr = tstr_accuracy(synthetic, synthetic_labels, holdout, holdout_labels)
        trtr = tstr_accuracy(train, train_labels, holdout, holdout_labels)
        measures["utility"] = {"tstr": tstr, "trtr": trtr, "tstr_over_trtr": tstr / trtr}
    elif any(lab is not None for lab in labels):
        raise ValueError("utility needs train_labels, holdout_labels and synthetic_labels together")
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    measures["privacy"], attack, distances, scores = _privacy_section(
        flat(train), flat(holdout), flat(synthetic), members, seed)
    sizes = {"train": len(train), "holdout": len(holdout), "synthetic": len(synthetic)}
    return SyntheticDataReport("images", sizes, measures, attack, distances, scores)


# --- tables -----------------------------------------------------------------------------------


def table_report(train, holdout, synthetic, spec, target=None, positive=None, members: int = 500,
                 seed: int = 0) -> SyntheticDataReport:
    """The report for tables (pandas DataFrames described by a :class:`labkit.tabular.TableSpec`).
    Utility (ROC AUC of predicting ``target in positive``) needs ``target`` and ``positive``."""
    from . import table_metrics as tm

    train, holdout, synthetic = (spec.check(f, n) for f, n in
                                 ((train, "train"), (holdout, "holdout"), (synthetic, "synthetic")))
    measures = {"fidelity": {"column_shapes": tm.column_shapes(holdout, synthetic, spec)[0],
                             "column_pair_trends": tm.column_pair_trends(holdout, synthetic, spec)[0]},
                "coverage": tm.coverage(train, synthetic, spec)}
    if (target is None) != (positive is None):
        raise ValueError("utility needs both target and positive (or neither)")
    if target is not None:
        tstr = tm.utility_auc(synthetic, holdout, spec, target, positive, seed)
        trtr = tm.utility_auc(train, holdout, spec, target, positive, seed)
        measures["utility"] = {"tstr": tstr, "trtr": trtr, "tstr_over_trtr": tstr / trtr}
    encode = tm.distance_features(train, spec)
    measures["privacy"], attack, distances, scores = _privacy_section(
        encode(train), encode(holdout), encode(synthetic), members, seed)
    measures["privacy"]["exact_copy_share"] = tm.exact_copy_share(synthetic, train, spec)
    sizes = {"train": len(train), "holdout": len(holdout), "synthetic": len(synthetic)}
    return SyntheticDataReport("table", sizes, measures, attack, distances, scores)


def synthetic_data_report(real_train, real_holdout, synthetic, **kwargs) -> SyntheticDataReport:
    """:func:`table_report` for DataFrames (pass ``spec``), :func:`image_report` for image arrays
    (pass ``classifier``)."""
    import pandas as pd

    if isinstance(real_train, pd.DataFrame):
        if "spec" not in kwargs:
            raise ValueError("a table report needs spec= (a labkit.tabular.TableSpec)")
        return table_report(real_train, real_holdout, synthetic, **kwargs)
    if "classifier" not in kwargs:
        raise ValueError("an image report needs classifier= (labkit.image_metrics.reference_classifier)")
    return image_report(real_train, real_holdout, synthetic, **kwargs)


# --- release checks and the data card ---------------------------------------------------------


def release_checks(report: SyntheticDataReport, epsilon: float | None = None,
                   max_epsilon: float = 1.0, max_attack_auc: float = 0.6, min_utility: float = 0.7) -> list:
    """Measured checks before sharing a synthetic set: (check, passed, evidence) triples.

    Privacy checks decide whether it may be shared; utility is reported so that the user knows what
    the set is good for. The attack check asks for evidence of absence, not absence of evidence: the
    *upper* end of the attack's 95% interval must be at most ``max_attack_auc``, so an attack scored
    on too few candidates (a wide interval) fails. The guarantee check asks for ε ≤ ``max_epsilon``
    (default 1: any attack's true-positive rate is then at most e ≈ 2.7 times its false-positive
    rate, plus δ); at ε = 8 the same bound allows e⁸ ≈ 3,000 times, which guarantees little.
    """
    p = report.measures["privacy"]
    a = report.attack
    checks = [
        ("membership attack shown weak", a.high <= max_attack_auc,
         f"AUC {a.auc:.3f} [{a.low:.3f}, {a.high:.3f}] from {a.members} members; upper end must be ≤ {max_attack_auc:g}"),
        ("no excess of near-copies", p["near_copy_share_synthetic"] <= 2 * p["near_copy_share_holdout"],
         f"{p['near_copy_share_synthetic']:.1%} of synthetic vs {p['near_copy_share_holdout']:.1%} of held-out "
         "rows closer than the held-out 5% quantile"),
        ("not closer to training data than fresh data", p["dcr_ratio"] >= 0.9,
         f"DCR ratio {p['dcr_ratio']:.3f}"),
        ("formal privacy guarantee", epsilon is not None and epsilon <= max_epsilon,
         "none (not trained with differential privacy)" if epsilon is None
         else f"ε = {epsilon:.3g}; must be ≤ {max_epsilon:g}"),
    ]
    if "exact_copy_share" in p:
        checks.append(("no exact copies", p["exact_copy_share"] == 0, f"{p['exact_copy_share']:.2%} copies"))
    if "utility" in report.measures:
        u = report.measures["utility"]
        checks.append(("useful for training models", u["tstr_over_trtr"] >= min_utility,
                       f"TSTR {u['tstr']:.3f} vs TRTR {u['trtr']:.3f}"))
    return checks


def release_decision(checks) -> str:
    """"share" when every privacy check passes (utility does not gate sharing), else "do not share"."""
    privacy_checks = [c for c in checks if c[0] != "useful for training models"]
    return "share" if all(passed for _, passed, _ in privacy_checks) else "do not share"


@dataclass
class SyntheticDataCard:
    """A data card for a released synthetic set; every number in it comes from a report."""

    name: str
    fields: dict
    report: SyntheticDataReport
    checks: list
    decision: str

    def to_markdown(self) -> str:
        lines = [f"### Data card: {self.name}", ""]
        lines += [f"- **{k}:** {v}" for k, v in self.fields.items()]
        lines += ["", "**Measured** (" + ", ".join(f"{k} {v:,}" for k, v in self.report.sizes.items()) + ")", ""]
        for s in SECTIONS:
            values = self.report.measures.get(s)
            if values:
                lines.append(f"- {s}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in values.items()))
        lines += ["", "**Release checks**", ""]
        lines += [f"- [{'x' if ok else ' '}] {name} — {evidence}" for name, ok, evidence in self.checks]
        lines += ["", f"**Decision: {self.decision}.**"]
        return "\n".join(lines)

    def _repr_markdown_(self):
        return self.to_markdown()

    def as_dict(self) -> dict:
        return {"name": self.name, **self.fields, "measured": self.report.measures,
                "checks": [{"check": n, "passed": bool(ok), "evidence": e} for n, ok, e in self.checks],
                "decision": self.decision}


def data_card(report: SyntheticDataReport, name: str, source: str, method: str, intended_use: str,
              licence: str = "as the source data", epsilon: float | None = None, delta: float | None = None,
              failure_modes: list | None = None, check_limits: dict | None = None) -> SyntheticDataCard:
    """A data card from a report: the descriptive fields you give, the measured values, the release
    checks (``check_limits``: keyword arguments of :func:`release_checks`) and the decision. Known failure modes are added from the measures (weak coverage,
    attackable members, low utility) to the ones you list."""
    for key, value in (("name", name), ("source", source), ("method", method), ("intended_use", intended_use)):
        if not isinstance(value, str) or not value.strip():
            raise ParameterError(key, value, "a non-empty description")
    checks = release_checks(report, epsilon, **(check_limits or {}))
    modes = list(failure_modes or [])
    cov = report.measures.get("coverage", {})
    if cov.get("coverage", 1.0) < 0.5:
        modes.append(f"covers only {cov['coverage']:.0%} of the real data's neighbourhoods: rare cases are missing")
    if not checks[0][1]:
        modes.append(f"membership of training records can be inferred ({checks[0][2]})")
    util = report.measures.get("utility")
    if util and util["tstr_over_trtr"] < 0.7:
        modes.append(f"models trained on it keep {util['tstr_over_trtr']:.0%} of real-data performance")
    guarantee = "none" if epsilon is None else f"({epsilon:.3g}, {delta if delta is not None else '?'})-DP"
    fields = {"source": source, "licence": licence, "method": method, "intended use": intended_use,
              "privacy guarantee": guarantee,
              "known failure modes": "; ".join(modes) if modes else "none measured"}
    return SyntheticDataCard(name, fields, report, checks, release_decision(checks))
