"""Every run records and reports the session each image came from (ISLES'24: acute CT vs
follow-up MRI); layouts without sessions are one study."""

from __future__ import annotations

import json

import pytest

from strokesynth.data.provenance import (
    ONE_STUDY,
    SOURCES,
    crosses_sessions,
    data_sources,
    source_lines,
)
from strokesynth.io import open_cohort
from strokesynth.phantom.isles24 import Isles24Geometry, write_isles24_phantom
from strokesynth.report.sources import sources_section

from conftest import run_cli, tiny_phantom_config

GEOMETRY = Isles24Geometry(size=64, slices=8, slice_mm=4.0, frames=24, dt=1.5, factor=2)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("isles24_sources") / "release"
    write_isles24_phantom(tiny_phantom_config(subjects=3, healthy=1, seed=5), root, GEOMETRY)
    return root


def test_the_record_names_each_keys_session_and_file(release):
    cases = open_cohort(release).cases
    record = data_sources(cases, {"cbf": "input", "ct": "input", "dwi": "target", "lesion": "label"})
    assert record["layouts"] == ["isles24"]
    assert record["keys"]["cbf"]["sessions"] == {"ses-01": 4} and record["keys"]["dwi"]["sessions"] == {"ses-02": 4}
    assert "follow-up" in record["keys"]["lesion"]["notes"]["ses-02"]
    first = record["cases"][cases[0].id]
    assert first["dwi"]["session"] == "ses-02" and first["dwi"]["file"].endswith("_ses-02_space-ncct_dwi.nii.gz")
    assert first["ct"]["session"] == "ses-01"
    assert crosses_sessions(record)
    assert any("different sessions" in line for line in source_lines(record))
    # the same session on both sides does not cross
    assert not crosses_sessions(data_sources(cases, {"cbf": "input", "tmax": "label"}))


def test_a_layout_without_sessions_is_one_study(tmp_path, capsys):
    code, out, err = run_cli(capsys, "phantom", "--out", str(tmp_path / "ph"), "--subjects", "1", "--size", "32",
                             "--no-figures", "--set", "grid.slices=[2]")
    assert code == 0, out + err
    cases = open_cohort(tmp_path / "ph").cases
    record = data_sources(cases, {"cbf": "input", "dwi": "target"})
    assert set(record["keys"]["dwi"]["sessions"]) == {ONE_STUDY} and not crosses_sessions(record)


def test_train_saves_the_record_and_a_report_shows_it(release, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--config", "configs/seg/unet2d_focal_tiny.yaml",
                             "--set", f"data.dataset={release}", "--set", "data.size=[32,32]",
                             "--set", "data.mode=resample", "--set", "run.folds=2", "--set", "run.epochs=1",
                             "--set", "run.steps_per_epoch=1", "--out", str(run))
    assert code == 0, out + err
    record = json.loads((run / SOURCES).read_text())
    assert record["keys"]["lesion"] == {"role": "label", "sessions": {"ses-02": 4},
                                        "notes": {"ses-02": record["keys"]["lesion"]["notes"]["ses-02"]}}
    assert record["keys"]["tmax"]["sessions"] == {"ses-01": 4}
    (anchor, heading, inner), = sources_section(run)
    assert anchor == "sources" and "ses-02" in inner and "different sessions" in inner
    assert sources_section(tmp_path) == []
