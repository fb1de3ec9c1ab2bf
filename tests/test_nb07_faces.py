"""Notebook 07 — StyleGAN-style faces and the four-step case: smoke run of the notebook."""
import numpy as np
import pytest

from labkit import files


@pytest.mark.notebook
def test_smoke_run_records_contract_metrics(smoke_run):
    metrics, outdir = smoke_run("07_faces")
    m = metrics["metrics"]
    for key in ["kid_generated", "kid_real_floor", "face_score_generated", "near_copy_share",
                "case_acc_real_only", "case_acc_real_plus_generated", "case_acc_real_plus_augmented",
                "case_acc_real_only_sd", "case_acc_real_plus_generated_sd",
                "case_acc_real_plus_augmented_sd", "ablation_kid_no_diffaug",
                "ablation_near_copy_no_diffaug", "train_seconds"]:
        assert key in m, key
    for key in ["face_score_generated", "near_copy_share", "case_acc_real_only",
                "case_acc_real_plus_generated", "case_acc_real_plus_augmented",
                "ablation_near_copy_no_diffaug"]:
        assert 0.0 <= m[key] <= 1.0, key
    assert m["train_seconds"] > 0 and m["reference_accuracy"] > 0.5
    assert set(m["ablation_curves"]) == {"DiffAugment", "no augmentation"}
    assert metrics["targets"]["face_score_generated"] == {"op": ">=", "value": 0.8}
    assert metrics["targets"]["near_copy_share"] == {"op": "<=", "value": 0.05}
    images = files.read_npz(outdir / "samples.npz")["images"]
    assert images.shape[1:] == (32, 32) and len(images) >= 1000
    assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() <= 1.0
    for name in ["generator.keras", "ablation_curves.png", "samples.png", "style_mixing.png",
                 "truncation.png", "noise.png", "nearest_training.png"]:
        assert (outdir / name).exists(), name
