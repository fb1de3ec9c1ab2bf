"""The course guide behind notebook 00: chapter map, bilingual glossary, notebook order, wrap-up table.

The map and the glossary live in ``data/course_map.csv`` and ``data/glossary.csv`` so that the notebook
renders them and the tests check them against the chapter and the notebooks.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from labkit import files

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
NOTEBOOK_DIR = ROOT / "notebooks"
GLOSSARY = DATA_DIR / "glossary.csv"
COURSE_MAP = DATA_DIR / "course_map.csv"
GLOSSARY_COLUMNS = ["zh", "en", "definition", "notebook"]
MAP_COLUMNS = ["section", "zh_title", "en_title", "notebook", "where", "coverage", "note"]
COVERAGE = ("full", "part", "missing")
_HEADING = re.compile(r"^#{1,6}\s+(11(?:\.\d+)*)\s+(.+?)\s*$")

# Notebook order: what each one needs first. "uses outputs" means it reads another notebook's
# output folder (it still runs without it, with that part marked as missing).
PREREQUISITES = {
    "01_dataset_types": {"needs": [], "uses_outputs": [], "path": "core"},
    "02_data_preparation": {"needs": ["01_dataset_types"], "uses_outputs": [], "path": "core"},
    "03_augmentation": {"needs": ["01_dataset_types"], "uses_outputs": [], "path": "core"},
    "04_gan": {"needs": ["01_dataset_types"], "uses_outputs": [], "path": "core"},
    "05_vae": {"needs": ["04_gan"], "uses_outputs": ["04_gan"], "path": "deep dive"},
    "06_adversarial": {"needs": ["01_dataset_types"], "uses_outputs": [], "path": "deep dive"},
    "07_faces": {"needs": ["04_gan"], "uses_outputs": [], "path": "deep dive"},
    "08_finance": {"needs": ["02_data_preparation", "04_gan"], "uses_outputs": [], "path": "deep dive"},
    "09_privacy": {"needs": ["04_gan", "05_vae"], "uses_outputs": [], "path": "core"},
    "10_beyond_gans": {"needs": ["03_augmentation", "04_gan", "05_vae"], "uses_outputs": ["04_gan", "05_vae"],
                       "path": "deep dive"},
}


# The chapter sections each notebook teaches (its title cell lists them with their Chinese titles).
NOTEBOOK_SECTIONS = {
    "01_dataset_types": ["11.1.1"],
    "02_data_preparation": ["11.1.2"],
    "03_augmentation": ["11.1.3"],
    "04_gan": ["11.2.2.1", "11.3.2"],
    "05_vae": ["11.2.2.2"],
    "06_adversarial": ["11.2.2.3"],
    "07_faces": ["11.3.2.1"],
    "08_finance": ["(unnumbered)", "11.3.2", "11.4.2.3"],
    "09_privacy": ["11.2.1", "11.4.1", "11.4.1.1", "11.4.1.2", "11.4.1.3", "11.4.2", "11.4.2.2", "11.4.2.3",
                   "11.5"],
    "10_beyond_gans": ["11.3.1", "11.4.2", "11.4.2.1"],
}


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a UTF-8 CSV as strings and check that it has exactly ``columns``."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: it ships with the workbook (git checkout {Path(path).name})")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    if list(table.columns) != columns:
        raise ValueError(f"{path} must have the columns {columns}, found {list(table.columns)}")
    return table


def load_glossary(path=GLOSSARY) -> pd.DataFrame:
    """The bilingual glossary: one row per term (中文, English, a one-line definition, notebook)."""
    return _read_csv(path, GLOSSARY_COLUMNS)


def load_course_map(path=COURSE_MAP) -> pd.DataFrame:
    """The chapter → notebook map: one row per chapter section, with its coverage (full/part/missing)."""
    table = _read_csv(path, MAP_COLUMNS)
    bad = sorted(set(table["coverage"]) - set(COVERAGE))
    if bad:
        raise ValueError(f"{path}: coverage must be one of {COVERAGE}, found {bad}")
    return table


def find_chapter() -> Path | None:
    """The chapter's Markdown (``$LABKIT_CHAPTER`` or ``shared/seed/chapter11.md`` above the repo), or None."""
    candidates = [os.environ.get("LABKIT_CHAPTER", "")]
    candidates += [str(base / "shared" / "seed" / "chapter11.md") for base in (ROOT, *ROOT.parents[:3])]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def chapter_sections(path) -> dict[str, list[str]]:
    """Every numbered heading of the chapter: ``{"11.1.1": ["数据集的定义与分类"], ...}``.

    A number that appears under several headings (the chapter repeats 11.4.1, 11.4.2 and 11.5) keeps
    every distinct title, in order.
    """
    sections: dict[str, list[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _HEADING.match(line.strip())
        if match:
            titles = sections.setdefault(match.group(1), [])
            if match.group(2) not in titles:
                titles.append(match.group(2))
    return sections


def notebook_text(stem: str, folder=NOTEBOOK_DIR) -> str:
    """All cell sources of ``<folder>/<stem>.ipynb`` joined, for term and link checks."""
    import nbformat

    notebook = nbformat.read(str(Path(folder) / f"{stem}.ipynb"), as_version=4)
    return "\n".join(cell.source for cell in notebook.cells)


def term_in_text(zh: str, en: str, text: str) -> bool:
    """Whether a glossary term appears in ``text`` in either language (case-insensitive)."""
    text = text.lower()
    return zh.lower() in text or en.lower() in text


def search(glossary: pd.DataFrame, query: str) -> pd.DataFrame:
    """Rows whose Chinese, English or definition contains ``query`` (case-insensitive)."""
    query = (query or "").strip().lower()
    if not query:
        return glossary
    hits = glossary.apply(lambda row: any(query in str(row[c]).lower() for c in ("zh", "en", "definition")),
                          axis=1)
    return glossary[hits]


def glossary_explorer(glossary: pd.DataFrame):
    """A search box over the glossary (ipywidgets); returns None where ipywidgets is missing."""
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    from IPython.display import display

    box = widgets.Text(placeholder="search: GAN, 隐私, prior …", description="Search",
                       continuous_update=True)
    out = widgets.Output()

    def show(change=None):
        out.clear_output(wait=True)
        with out:
            hits = search(glossary, box.value)
            display(text_table(hits.set_index("zh")) if len(hits) else "no term matches")

    box.observe(show, names="value")
    show()
    return widgets.VBox([box, out])


def section_label(section: str, course_map: pd.DataFrame | None = None) -> str:
    """``"11.1.1 数据集的定义与分类"`` for a section number (the map's Chinese title)."""
    course_map = load_course_map() if course_map is None else course_map
    row = course_map[course_map["section"] == section]
    if row.empty:
        raise KeyError(f"section {section!r} is not in {COURSE_MAP.name}")
    if section.startswith("("):
        return row["zh_title"].iloc[0]
    return f"{section} {row['zh_title'].iloc[0]}"


def study_order(prerequisites=PREREQUISITES) -> pd.DataFrame:
    """One row per notebook: its chapter sections, what to read first, whose outputs it reads, path."""
    def link(stems):
        return ", ".join(stems) if stems else "—"

    course_map = load_course_map()
    rows = [{"notebook": stem,
             "chapter sections": "; ".join(section_label(s, course_map) for s in NOTEBOOK_SECTIONS[stem]),
             "read first": link(p["needs"]), "reads the outputs of": link(p["uses_outputs"]),
             "path": p["path"]} for stem, p in prerequisites.items()]
    return pd.DataFrame(rows).set_index("notebook")


def readme_run_times(readme=ROOT / "README.md") -> dict[str, str]:
    """The default run time of each notebook, as the README's notebook table states it."""
    times = {}
    for line in Path(readme).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"`\d\d_\w+`", cells[0]):
            times[cells[0].strip("`")] = cells[-1]
    return times


def course_records(output_dir) -> dict[str, dict]:
    """Every ``<output_dir>/NN_*/metrics.json`` found, by notebook stem (an empty dict when none)."""
    records = {}
    for path in sorted(Path(output_dir).glob("[0-9][0-9]_*/metrics.json")):
        try:
            records[path.parent.name] = files.read_json(path)
        except (OSError, ValueError):
            continue
    return records


# What the wrap-up table says about each method. The measured column is filled from metrics.json.
LESSONS = [
    ("01_dataset_types", "supervised / unsupervised / RL data",
     "knowing what a data set can teach before training on it",
     ["supervised_test_accuracy", "clustering_ari"],
     "accuracy on the training digits flatters; only held-out digits tell, and k-means groups agree "
     "only partly with the hidden labels (ARI)"),
    ("02_data_preparation", "a leak-free preprocessing pipeline",
     "honest scores on a messy real table",
     ["pipeline_test_auc", "leak_target_feature_auc"],
     "target leakage and feature selection on all rows inflated the score; caught by fitting everything "
     "inside a pipeline on training rows only"),
    ("03_augmentation", "label-preserving augmentation",
     "variation the model will meet later (shifts, noise)",
     ["image_shifted_gain", "image_flip_loss", "audio_noisy_gain"],
     "flipping digits changes their label and costs accuracy; caught by measuring each transform separately"),
    ("04_gan", "GAN (DCGAN, conditional GAN)",
     "sharp samples; labelled synthetic sets",
     ["fid_dcgan", "fid_real_floor", "tstr_accuracy", "trtr_accuracy"],
     "losses say nothing about quality, and some classes were drawn rarely; caught by FID against a real "
     "floor, class balance and near-copy checks"),
    ("05_vae", "VAE (ELBO, VampPrior)",
     "a likelihood bound in nats, a smooth latent space",
     ["test_elbo_nats", "test_iwae_nats", "fid_vae"],
     "the chapter's loss is not an ELBO; caught by deriving it and checking the KL numerically"),
    ("06_adversarial", "adversarial attacks and training",
     "testing robustness with generated worst cases",
     ["pgd_accuracy_eps03", "fgsm_at_fgsm_accuracy_eps03", "fgsm_at_pgd_accuracy_eps03"],
     "FGSM training looked robust under FGSM and fell under PGD; caught by always testing the strongest attack"),
    ("07_faces", "StyleGAN-style generator, 70 faces",
     "seeing what a style-based generator controls",
     ["near_copy_share", "reference_accuracy"],
     "with 70 faces the discriminator memorises and the generator copies; caught by near-copy shares and "
     "the DiffAugment ablation; the face case cannot show a gain from a 100% baseline"),
    ("08_finance", "market-series and table generators",
     "synthetic prices and loans judged by the field's protocols",
     ["table_quality", "table_tstr_gap", "rebalance_recall_after"],
     "a weak judge flatters every generator; caught by a stronger classifier and classical baselines "
     "(GARCH, bootstrap, Gaussian copula)"),
    ("09_privacy", "privacy audit and DP-SGD",
     "deciding whether a synthetic set may be released",
     ["mia_auc_overfit", "mia_auc_regularised", "mia_whitebox_dp_drop"],
     "an over-fitted generator gave its training digits away although it made no pixel copies; caught by "
     "a membership-inference attack, not by distance summaries"),
    ("10_beyond_gans", "diffusion (latent and pixel), VAE-GAN, a small transformer",
     "the generators that followed the chapter, on the same yardsticks",
     ["fid_diffusion", "fid_pixel_diffusion", "tstr_accuracy_diffusion", "text_perplexity_transformer",
      "text_perplexity_ngram"],
     "pixel-space diffusion is too slow for a CPU and a small transformer on a few hundred texts does not "
     "beat an n-gram model; caught by comparing at equal training time and on held-out perplexity"),
]


def _fmt(value) -> str:
    """A short text for a recorded value."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def text_table(table: pd.DataFrame):
    """``table`` styled for reading: text left-aligned (JupyterLab right-aligns table cells)."""
    left = [("text-align", "left")]   # CSS rules for the whole table (works with a repeated index too)
    return table.style.set_table_styles([{"selector": "th", "props": left}, {"selector": "td", "props": left}])


def wrapup_table(output_dir, lessons=LESSONS) -> pd.DataFrame:
    """The course's lessons as one table; measured cells come from ``<output_dir>/NN_*/metrics.json``.

    A notebook that has not been run here shows "not run yet" instead of a number; its run time is then
    the README's.
    """
    records, readme = course_records(output_dir), readme_run_times()
    rows = []
    for stem, method, good_for, metric_names, caught in lessons:
        record = records.get(stem)
        if record:
            found = {n: record["metrics"][n] for n in metric_names if n in record.get("metrics", {})}
            measured = "; ".join(f"{n} = {_fmt(v)}" for n, v in found.items()) or "—"
            cost = f"{record.get('elapsed_s', 0):.0f} s here ({record.get('profile')} profile)"
        else:
            measured = f"not run yet (run {stem})"
            cost = f"{readme.get(stem, '?')} (README, lab profile)"
        rows.append({"notebook": stem, "method": method, "good for": good_for, "cost on a laptop CPU": cost,
                     "measured here": measured, "what went wrong, and how it was caught": caught})
    return pd.DataFrame(rows).set_index("notebook")
