"""`labkit report` on untrusted students' folders: each case of the reliability review gives a safe report.

Every case writes a hostile or broken folder next to one good notebook folder and checks that the
report is still written, that nothing hostile reaches the HTML or Markdown unescaped, that no file
outside the folder is read, and that no forged or non-finite value passes.
"""
import json
import os
import re
import stat

import pytest

from labkit import files, report
from labkit.__main__ import main

PNG = report.PNG_MAGIC + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
GOOD = {"notebook": "01_dataset_types", "profile": "lab", "seed": 0, "elapsed_s": 12.0,
        "metrics": {"supervised_test_accuracy": 0.97, "clustering_ari": 0.35, "rl_heuristic_over_random": 9.0,
                    "rl_bc_return": 150.0},
        "targets": {}}


def _write(folder, record=None, raw=None):
    folder.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        (folder / "metrics.json").write_bytes(raw)
    else:
        (folder / "metrics.json").write_text(json.dumps(record if record is not None else GOOD))
    return folder


def _report(root, **kw):
    html_path, md_path = report.write_report(root, **kw)
    return html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")


def _rows(page, stem):
    """``{metric: (value, target, mark)}`` of one notebook's HTML table."""
    section = page.split(f"<h2 id='{stem}'>", 1)[1].split("<h2 ", 1)[0]
    cells = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td class='[^']*'>(.*?)</td></tr>", section)
    return {c[0]: c[1:] for c in cells}


def _heading(page, stem):
    return page.split(f"<h2 id='{stem}'>", 1)[1].split("</h2>", 1)[0]


def _assert_inert(*texts):
    for text in texts:
        assert "<script" not in text.lower() and "onerror=" not in text.lower().replace("onerror=alert", "")
        assert "<img src=x" not in text


@pytest.fixture()
def root(tmp_path):
    folder = tmp_path / "outputs"
    _write(folder / "01_dataset_types")
    return folder


def test_good_folder_is_graded_by_the_course_notebooks(root):
    page, md = _report(root)
    rows = _rows(page, "01_dataset_types")
    assert rows["supervised_test_accuracy"] == ("0.97", "&gt;= 0.95", "pass")
    assert rows["rl_bc_return"][2] == "needs the teacher&#x27;s run"       # an f-string target is never a pass
    assert "0 missed" in _heading(page, "01_dataset_types")
    assert "supervised\\_test\\_accuracy | 0.97 | &gt;= 0.95 | pass" in md


def test_script_in_the_notebook_field_and_metric_names(root):
    record = dict(GOOD, notebook=f"01_x'>{SCRIPT}<b id='", profile=SCRIPT,
                  metrics={**GOOD["metrics"], IMG: SCRIPT, "a|b\nc": "x|y"})
    _write(root / "02_data_preparation", record)
    page, md = _report(root)
    _assert_inert(page, md)
    assert "<h2 id='02_data_preparation'>" in page                          # the folder's name, not the field
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "a\\|b c | x\\|y" in md                                          # the table is not broken


def test_script_in_a_figure_name(root):
    (root / "01_dataset_types" / f"{IMG}.png").write_bytes(PNG)
    page, md = _report(root)
    _assert_inert(page, md)
    assert "<figcaption>&lt;img src=x onerror=alert(2)&gt;</figcaption>" in page


def test_symlinked_png_and_folder_are_refused(root, tmp_path):
    secret = tmp_path / "teacher_private"
    secret.mkdir()
    (secret / "id_rsa").write_bytes(PNG + b"TEACHER-SECRET-KEY")
    os.symlink(secret / "id_rsa", root / "01_dataset_types" / "a_leak.png")
    _write(tmp_path / "outside" / "02_data_preparation",
           dict(GOOD, metrics={"pipeline_test_auc": 0.99, "missing_fraction_after": 0.0}))
    os.symlink(tmp_path / "outside" / "02_data_preparation", root / "02_data_preparation")
    os.link(secret / "id_rsa", root / "01_dataset_types" / "b_hardlink.png")
    page, md = _report(root)
    assert "TEACHER-SECRET" not in page and "VEFDSEVSLVNFQ1JFVC" not in page     # neither raw nor base64
    assert "figure a_leak.png not shown: a symbolic link" in page
    assert "figure b_hardlink.png not shown: a hard link" in page
    assert "refused: a symbolic link" in _heading(page, "02_data_preparation")
    assert "pipeline_test_auc" not in page


def test_dotdot_and_absolute_notebook_names_are_never_paths(root, tmp_path):
    private = tmp_path / "teacher_private"
    private.mkdir()
    (private / "private_photo.png").write_bytes(PNG)
    _write(root / "02_data_preparation", dict(GOOD, notebook=str(private)))
    _write(root / "03_augmentation", dict(GOOD, notebook="../../teacher_private"))
    (root / "..%2f..%2fteacher_private").mkdir()                       # a folder name that is no notebook name
    page, md = _report(root)
    assert "private_photo" not in page and "teacher_private" not in page
    assert "<h2 id='03_augmentation'>" in page


def test_bad_json_non_utf8_and_wrong_shapes_get_their_own_row(root):
    cases = {"02_data_preparation": b'{"notebook": "02", "metrics": {"a": 1,',
             "03_augmentation": b'{"metrics": {"caf\xe9": 1}}',
             "04_gan": b'[1, 2, 3]',
             "05_vae": b'{"metrics": [1, 2]}',
             "07_faces": b'{"metrics": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
             "06_adversarial": json.dumps(dict(GOOD, elapsed_s="long", seed="x", profile=[1],
                                               metrics={"clean_accuracy": {"nested": [1, 2]}})).encode()}
    for stem, raw in cases.items():
        _write(root / stem, raw=raw)
    page, md = _report(root)
    assert "0 missed" in _heading(page, "01_dataset_types")                 # the good folder is still graded
    for stem, reason in [("02_data_preparation", "not valid JSON"), ("03_augmentation", "not UTF-8"),
                         ("04_gan", "top level is a list"), ("05_vae", "'metrics' is missing or not an object")]:
        (name, (value, _, mark)), = _rows(page, stem).items()
        assert name == f"{stem}/metrics.json" and reason in value.replace("&#x27;", "'") and mark == "invalid"
    assert "RecursionError" in _rows(page, "07_faces")["07_faces/metrics.json"][0]
    assert "profile ?, seed ?, time ?" in page
    assert _rows(page, "06_adversarial")["clean_accuracy"][2] == "invalid"


def test_nan_infinity_true_and_strings_never_pass(root):
    raw = (b'{"metrics": {"supervised_test_accuracy": Infinity, "clustering_ari": 0.5}, "elapsed_s": NaN}')
    _write(root / "02_data_preparation", raw=raw)
    record = dict(GOOD, metrics={"trtr_accuracy": True, "tstr_accuracy": "0.99", "near_copy_share": None,
                                 "classes_covered_dcgan": 10, "cgan_label_agreement": 0.95,
                                 "fid_dcgan": 1.0, "fid_dcgan_tutorial_settings": 2.0,
                                 "small_real_plus_synthetic_accuracy": 0.9})
    _write(root / "04_gan", record)
    page, md = _report(root)
    value = _rows(page, "02_data_preparation")["02_data_preparation/metrics.json"][0]
    assert "Infinity is not valid JSON" in value
    rows = _rows(page, "04_gan")
    assert rows["trtr_accuracy"][2] == "invalid" and rows["tstr_accuracy"][2] == "invalid"
    assert rows["classes_covered_dcgan"][2] == "pass"
    assert rows["near_copy_share"] == ("null", "&lt;= 0.05", "invalid")
    assert report.number(True) is None and report.number(float("nan")) is None
    assert not report.meets(float("inf"), {"op": ">=", "value": 0.9})


def test_forged_targets_in_the_students_file_are_ignored(root):
    record = dict(GOOD, metrics={**GOOD["metrics"], "supervised_test_accuracy": 0.10},
                  targets={"supervised_test_accuracy": {"op": ">=", "value": 0},
                           "clustering_ari": {"op": "~=", "value": "0.9"}})
    _write(root / "01_dataset_types", record)
    page, _ = _report(root)
    assert _rows(page, "01_dataset_types")["supervised_test_accuracy"] == ("0.1", "&gt;= 0.95", "miss")
    assert "1 missed" in _heading(page, "01_dataset_types")


def test_teacher_targets_grade_computed_targets(root, tmp_path):
    teacher = tmp_path / "teacher"
    _write(teacher / "01_dataset_types", dict(GOOD, targets={
        "supervised_test_accuracy": {"op": ">=", "value": 0.95}, "rl_bc_return": {"op": ">=", "value": 160.0},
        "bogus": {"op": "~=", "value": 1}}))
    page, _ = _report(root, targets=teacher)
    rows = _rows(page, "01_dataset_types")
    assert rows["rl_bc_return"] == ("150", "&gt;= 160", "miss")
    assert "bogus" not in rows and rows["clustering_ari"][1:] == ("", "")
    assert main(["report", "--output", str(root), "--targets", str(tmp_path / "nowhere")]) == 2


def test_missing_metric_makes_the_run_incomplete(root):
    record = dict(GOOD, metrics={"supervised_test_accuracy": 0.97})
    _write(root / "01_dataset_types", record)
    (root / "02_data_preparation").mkdir()                               # a run that never wrote metrics.json
    page, md = _report(root)
    heading = _heading(page, "01_dataset_types")
    assert "incomplete: 3 missing" in heading and "class='miss'" in heading
    assert _rows(page, "01_dataset_types")["clustering_ari"] == ("", "&gt;= 0.3", "missing")
    assert "no metrics.json" in _rows(page, "02_data_preparation")["02_data_preparation/metrics.json"][0]


def test_oversize_and_fake_files_are_not_embedded(root, monkeypatch):
    folder = root / "01_dataset_types"
    with open(folder / "a_huge.png", "wb") as handle:                     # sparse: costs no disk
        handle.write(report.PNG_MAGIC)
        handle.truncate(report.MAX_PNG_BYTES + 1)
    (folder / "b_fake.png").write_bytes(b"#!/bin/sh\n")
    for i in range(6):
        (folder / f"fig{i}.png").write_bytes(PNG)
    big = root / "02_data_preparation"
    big.mkdir()
    with open(big / "metrics.json", "wb") as handle:
        handle.truncate(report.MAX_JSON_BYTES + 1)
    page, md = _report(root)
    assert "figure a_huge.png not shown" in page and "over the 5,242,880-byte limit" in page
    assert "figure b_fake.png not shown: not a PNG image" in page
    assert page.count("<figure>") == report.MAX_FIGURES
    assert "over the 2,097,152-byte limit" in page
    assert len(page) < 100_000
    monkeypatch.setattr(report, "MAX_INPUT_BYTES", 400)                 # the report-wide input cap
    page, _ = _report(root)
    assert "input limit" in page and page.count("<figure>") < report.MAX_FIGURES


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(root, umask, mode):
    old = os.umask(umask)
    try:
        html_path, md_path = report.write_report(root)
        files.write_json(root / "x.json", {"a": 1})
    finally:
        os.umask(old)
    for path in (html_path, md_path, root / "x.json"):
        assert stat.S_IMODE(path.stat().st_mode) == mode


def test_html_forbids_scripts(root):
    page, _ = _report(root)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_labkit_json_is_strict(tmp_path):
    import numpy as np

    data = {"py_nan": float("nan"), "np32_nan": np.float32("nan"), "np64_inf": np.float64("inf"),
            "arr": np.array([1.0, -np.inf]), "ok": np.float32(0.5)}
    with pytest.warns(RuntimeWarning, match="4 non-finite"):
        files.write_json(tmp_path / "m.json", data)
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"py_nan": None, "np32_nan": None, "np64_inf": None, "arr": [1.0, None], "ok": 0.5}
    (tmp_path / "bad.json").write_text('{"a": NaN}')
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        files.read_json(tmp_path / "bad.json")


def test_cached_classifier_is_verified_before_loading(tmp_path):
    keras = pytest.importorskip("keras")

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = files.save_keras(model, tmp_path / "m.keras", checksum=True)
    assert (tmp_path / "m.keras.sha256").read_text().strip() == files.sha256_file(path)
    assert files.load_keras_verified(path) is not None
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    with pytest.warns(UserWarning, match="SHA-256 does not match"):
        assert files.load_keras_verified(path) is None
    (tmp_path / "m.keras.sha256").unlink()
    with pytest.warns(UserWarning, match="no checksum file"):
        assert files.load_keras_verified(path) is None
    assert files.load_keras_verified(tmp_path / "absent.keras") is None
