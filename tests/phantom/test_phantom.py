"""The digital stroke phantom: physics, labels, layout, determinism, CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from strokesynth.cli import main
from strokesynth.io import open_cohort
from strokesynth.io.integrity import check_dataset
from strokesynth.phantom import ANATOMY_LABELS, generate_cohort, read_ground_truth, write_phantom
from strokesynth.phantom.atlas import mni_atlas

from conftest import tiny_phantom_config


def _stroke_scans(scans):
    return [s for s in scans if s.info["stroke"] is not None and s.truth["core"].array.any()]


def test_atlas_is_the_real_mni_anatomy():
    atlas = mni_atlas()
    gm, wm = atlas.channel("gm"), atlas.channel("wm")
    assert 800 < gm.sum() / 1000 < 1200 and 500 < wm.sum() / 1000 < 800  # ml on the 1 mm grid
    assert atlas.channel("ventricle").sum() / 1000 > 10
    assert (atlas.artery_id > 0).any() and atlas.channel("vein").sum() > 0


def test_core_is_where_true_cbf_is_low(tiny_phantom):
    for scan in _stroke_scans(tiny_phantom):
        cbf = scan.truth["cbf"].array
        core = scan.truth["core"].array > 0
        anat = scan.truth["anatomy"].array
        normal_wm = np.median(cbf[(anat == ANATOMY_LABELS["wm"]) & (scan.truth["tmax"].array < 3)])
        normal_gm = np.median(cbf[(anat == ANATOMY_LABELS["gm"]) & (scan.truth["tmax"].array < 3)])
        assert 18 < normal_wm < 30 and 35 < normal_gm < 62  # partial volume pulls GM below 50-60
        assert cbf[core].max() < 0.3 * 60  # below 30 % of the highest normal grey-matter CBF
        assert np.median(cbf[core]) < 0.3 * normal_gm
        assert (anat[core] == ANATOMY_LABELS["lesion"]).all()


def test_dwi_brighter_in_core_than_same_tissue_elsewhere(tiny_phantom):
    for scan in _stroke_scans(tiny_phantom):
        dwi = scan.case["dwi"].array
        core = scan.truth["core"].array > 0
        anat = scan.truth["anatomy"].array
        normal = np.isin(anat, [ANATOMY_LABELS["gm"], ANATOMY_LABELS["wm"]]) & (scan.truth["penumbra"].array == 0)
        assert np.median(dwi[core]) > 1.3 * np.median(dwi[normal])


def test_tmax_prolonged_in_penumbra(tiny_phantom):
    for scan in _stroke_scans(tiny_phantom):
        pen = scan.truth["penumbra"].array > 0
        if pen.sum() < 20:
            continue
        anat = scan.truth["anatomy"].array
        normal = np.isin(anat, [2, 3]) & (scan.truth["tmax"].array < 3)
        computed = scan.case["tmax"].array  # from the simulated 4D scan by the perfusion module
        assert np.median(computed[pen]) > np.median(computed[normal]) + 3.0
        assert (scan.truth["tmax"].array[pen] > 6.0).all()


def test_normal_tissue_tmax_within_a_second_of_the_truth(tiny_phantom):
    """The scan's own oSVD maps at the default noise: the median normal-tissue Tmax error of each
    scan is under 1 s (measured -0.25 to -0.44 s on these three scans)."""
    from strokesynth.phantom.validation import maps_vs_truth

    for scan in tiny_phantom:
        maps = {k: scan.case[k].array for k in ("cbf", "cbv", "tmax")}
        truth = {k: scan.truth[k].array for k in ("cbf", "cbv", "tmax", "core", "penumbra", "anatomy")}
        assert abs(maps_vs_truth(maps, truth)["tmax_err_normal_s"]) < 1.0, scan.case.id


def test_healthy_subject_has_no_lesion(tiny_phantom):
    healthy = [s for s in tiny_phantom if s.info["stroke"] is None]
    assert healthy and all(not s.case["lesion"].array.any() for s in healthy)
    assert all(not s.truth["penumbra"].array.any() for s in healthy)


def test_grid_and_acquisition(tiny_phantom):
    cfg = tiny_phantom_config()
    for scan in tiny_phantom:
        case = scan.case
        assert case.spacing == pytest.approx((2.4, 2.4, 5.0))
        x, y, z = case.spatial_shape
        assert (x, y) == (96, 96) and z in (4, 6)
        ctp = case["ctp"]
        assert ctp.shape[3] == cfg.bolus.frames and ctp.dt == cfg.bolus.dt
        ct = case["ct"].array
        assert ct.max() > 700  # skull
        brain = scan.truth["anatomy"].array > 0
        assert 15 < np.median(ct[brain]) < 45  # brain HU


def test_written_cohort_reads_back_and_is_deterministic(tmp_path):
    cfg = tiny_phantom_config()
    cfg.subjects, cfg.healthy = 1, 0
    cfg.grid.two_slab_prob = 1.0  # one subject, two slabs
    a = write_phantom(generate_cohort(cfg), tmp_path / "a", cfg)
    b = write_phantom(generate_cohort(cfg), tmp_path / "b", cfg)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert hashlib.sha256((a / rel).read_bytes()).digest() == hashlib.sha256((b / rel).read_bytes()).digest(), rel

    cohort = open_cohort(a)
    assert cohort.layout == "isles2018" and len(cohort) == 2
    assert len(cohort.subjects) == 1  # two scans of one subject, from strokesynth.json
    report = check_dataset(a)
    assert report.ok, report.problems
    # ground truth beside the layout, on the same grid as the scan
    for case in cohort:
        truth = read_ground_truth(a, case.id)
        assert np.allclose(truth["core"].affine, case.affine, atol=1e-6)
        assert np.array_equal(truth["core"].array, case["lesion"].array)
        assert (a / "groundtruth" / "figures" / f"{case.id}.png").stat().st_size > 1000

    other = tiny_phantom_config(seed=6)
    other.subjects, other.healthy = 1, 0
    other.grid.two_slab_prob = 1.0
    c = generate_cohort(other)
    assert not np.array_equal(c[0].case["ct"].array, cohort.cases[0]["ct"].array)


def test_phantom_and_perfusion_cli(tmp_path, capsys):
    out = tmp_path / "ph"
    args = ["phantom", "--out", str(out), "--subjects", "1", "--seed", "2", "--size", "64",
            "--set", "grid.slices=[2]", "--set", "grid.two_slab_prob=0", "--no-figures"]
    main(args)
    assert check_dataset(out).ok
    with pytest.raises(SystemExit) as exc:  # refuses to overwrite
        main(args)
    assert exc.value.code == 2
    assert "--force" in capsys.readouterr().err

    maps = tmp_path / "maps"
    main(["perfusion", str(out / "case_1"), "--out", str(maps), "--method", "csvd"])
    for name in ("cbf", "cbv", "mtt", "tmax", "mip", "mask", "cta_frames"):
        assert (maps / f"{name}.nii.gz").exists()
    assert (maps / "perfusion.json").exists()
    facts = json.loads((maps / "perfusion.json").read_text())["aif"]
    assert facts["arrival_s"] < facts["peak_time_s"] and len(facts["location_voxel"]) == 3 and len(facts["voxels"]) == 6
    assert (maps / "aif.png").stat().st_size > 1000  # the AIF with its arrival and peak drawn

    # a 3D file is not a 4D CTP: one error line, exit 2, nothing written
    ct = next((out / "case_1").glob("SMIR.Brain.XX.O.CT.*/*.nii"))
    with pytest.raises(SystemExit) as exc:
        main(["perfusion", str(ct), "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "4D" in err[0]
    assert not (tmp_path / "bad").exists()


def test_tmax_error_counted_from_the_slabs_earliest_artery():
    """A slab whose earliest artery fills 0.5 s after the carotid: maps that read every delay from
    that artery are 0.5 s early against the carotid's truth and exact against the slab's."""
    from strokesynth.phantom.validation import maps_vs_truth

    shape = (8, 8, 2)
    anat = np.full(shape, 2, np.uint8)
    delay = np.linspace(0.5, 2.5, anat.size, dtype=np.float32).reshape(shape)
    art = np.full(shape, -1.0, np.float32)
    art[0, 0, 0], art[0, 1, 0] = 0.5, 1.2
    truth = {"cbf": np.full(shape, 50.0, np.float32), "cbv": np.full(shape, 4.0, np.float32), "tmax": delay,
             "core": np.zeros(shape, np.uint8), "penumbra": np.zeros(shape, np.uint8), "anatomy": anat,
             "artery_delay": art}
    maps = {"cbf": truth["cbf"], "cbv": truth["cbv"], "tmax": delay - 0.5}
    out = maps_vs_truth(maps, truth, aif_voxels=np.array([[0, 0, 0]]))
    assert out["earliest_artery_s"] == 0.5 and out["aif_late_s"] == 0.0
    assert out["tmax_err_normal_s"] == pytest.approx(-0.5, abs=0.01)
    assert out["tmax_err_slab_s"] == pytest.approx(0.0, abs=0.01)
    assert out["tmax_abs_err_slab_s"] == pytest.approx(0.0, abs=0.01)
