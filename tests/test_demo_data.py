"""`demo --data DIR`: the systems on a user's own ISLES'24 tree at a working grid, the label-map
system skipped (no label maps) and said so, the sessions recorded, the input never touched."""

from __future__ import annotations

import hashlib
import json

import pytest

from strokesynth.io.nifti import read_volume
from strokesynth.phantom.isles24 import Isles24Geometry, write_isles24_phantom

from conftest import run_cli, tiny_phantom_config

GEOMETRY = Isles24Geometry(size=64, slices=8, slice_mm=4.0, frames=24, dt=1.5, factor=2)

#: the smallest budgets that still run every stage
BUDGET = ["--size", "32", "--folds", "2", "--gan-epochs", "1", "--seg-epochs", "1",
          "--set", "ctmr:synthesis.run.steps_per_epoch=2", "--set", "ctmr:segmentation.run.steps_per_epoch=2",
          "--set", "pseudo-dwi:system.run.epochs=1", "--set", "pseudo-dwi:system.run.steps_per_epoch=2",
          "--set", "pseudo-dwi:system.optim.milestones=[1]",
          "--set", "pseudo-healthy:system.run.epochs=1", "--set", "pseudo-healthy:segmentor.run.epochs=1"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("isles24_demo") / "release"
    write_isles24_phantom(tiny_phantom_config(subjects=4, healthy=1, seed=3), root, GEOMETRY)
    for path in root.rglob("*_dseg.*"):  # as the release: no whole-brain label maps
        path.unlink()
    return root


def _digest(root) -> str:
    h = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


def test_demo_on_an_isles24_tree(release, tmp_path, capsys):
    before = _digest(release)
    out = tmp_path / "demo"
    code, text, err = run_cli(capsys, "demo", "--data", str(release), "--out", str(out), *BUDGET)
    assert code == 0, text + err
    assert "labelmap skipped" in text and "ses-02" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layout"] == "isles24" and summary["cases"] == 5 and summary["input_size"] == [32, 32]
    assert summary["pixel_mm"] == pytest.approx(230.4 / 32, rel=1e-3)  # the field of view fills the working grid
    assert set(summary["seconds_by_stage"]) == {"data", "ctmr", "pseudo-dwi", "pseudo-healthy"}
    assert list(summary["peak_gb_by_stage"]) == list(summary["seconds_by_stage"])
    assert all(0 < v < 24 for v in summary["peak_gb_by_stage"].values())  # each stage's own peak resident memory
    assert "labelmap" in summary["skipped"] and "labelmap" not in summary["systems"]
    methods = [r["method"] for r in summary["overview"]]
    assert methods[:2] == ["FCN: PSPNet + focal loss", "FCN-CGAN: + generated DWI"]
    assert "Tmax > 6 s" in methods and "CBF < 30 % of the healthy median" in methods
    for r in summary["overview"]:
        assert r["n"] > 0 and 0 <= r["dice"]["mean"] <= 1, r
    sources = json.loads((out / "data_sources.json").read_text())
    assert sources["keys"]["dwi"]["sessions"] == {"ses-02": 5} and sources["keys"]["ctp"]["sessions"] == {"ses-01": 5}
    html = (out / "report.html").read_text()
    assert "Cohort: your data set" in html and "different sessions" in html and "labelmap was not run" in html
    assert "Where every image came from" in (out / "ctmr" / "report.html").read_text()
    # the cGAN's DWI lands on each case's own (native) grid, not the 32 px working grid
    case = sorted(p for p in (out / "ctmr" / "dwi_gen").iterdir() if p.is_dir())[0]
    assert read_volume(case / "dwi_gen.nii.gz").spatial_shape == (64, 64, 8)
    assert _digest(release) == before  # the input is read, never written


def test_demo_refuses_to_write_into_its_data(release, tmp_path, capsys):
    before = _digest(release)
    code, _, err = run_cli(capsys, "demo", "--data", str(release), "--out", str(release), "--force", *BUDGET)
    assert code == 2 and "--out" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "demo", "--data", str(release), "--out", str(release / "derivatives" / "run"),
                           "--force", *BUDGET)
    assert code == 2 and "--out" in err
    code, _, err = run_cli(capsys, "demo", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x"))
    assert code == 2 and "missing" in err and not (tmp_path / "x").exists()
    assert _digest(release) == before


def test_the_label_map_system_gets_a_working_grid_on_a_users_data():
    """With label maps in the tree (e.g. SynthSeg's as ``*_dseg``) the label-map system runs on the
    tiny config's 64 px at the data set's field of view, 16 slices of 10 mm; on the phantom, as made."""
    from strokesynth.recipes.catalog.labelmap_augmentation import demo_cohort
    from strokesynth.recipes.recipe import DemoCohort

    sets = demo_cohort(DemoCohort(data="/d", size=128, folds=3, seed=2, pixel_mm=1.8))
    assert sets == ["seed=2", "phantom.seed=2", "dataset=/d", "grid.spacing_mm=3.6", "grid.slice_mm=10", "grid.slices=16"]
    assert demo_cohort(DemoCohort(data="/p", size=64, folds=3, seed=0)) == ["seed=0", "phantom.seed=0"]
