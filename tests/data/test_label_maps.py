"""Label tables, MR volume preparation and lesion injection (Platscher et al.'s data layer)."""

from __future__ import annotations

import numpy as np
import pytest

from strokesynth.data.case import Case
from strokesynth.data.injection import inject, inject_with_retries, parenchyma_classes
from strokesynth.data.label_maps import load_label_table, one_hot
from strokesynth.data.mr_volumes import LesionMasks, TranslationSlices, prepare_mr_case
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError


def _labels(shape=(16, 16, 4)) -> np.ndarray:
    """A small phantom-class map: background ring, CSF, then GM/WM halves and a ventricle."""
    lab = np.zeros(shape, np.uint8)
    lab[2:14, 2:14] = 1  # csf
    lab[3:13, 3:8] = 3  # gm_right
    lab[3:13, 8:13] = 6  # wm_left
    lab[7:9, 7:9] = 2  # ventricles
    return lab


def _case(lab: np.ndarray, lesion: np.ndarray | None = None, dwi_shape=None) -> Case:
    aff = np.diag([2.0, 2.0, 5.0, 1.0])
    dwi = np.where(lab > 0, 100.0, 0.0).astype(np.float32)
    if lesion is not None:
        dwi[lesion > 0] = 200.0
    mods = {"anatomy": Volume(lab, aff, kind="label"),
            "dwi": Volume(dwi if dwi_shape is None else np.zeros(dwi_shape, np.float32), aff)}
    if lesion is not None:
        mods["lesion"] = Volume(lesion.astype(np.uint8), aff, kind="label")
    # a reader lets a modality live on its own grid (own_grid); the label map must still match its DWI
    return Case("c1", "c1", mods, own_grid=frozenset({"anatomy"}), where="data/c1")


def test_shipped_tables_and_unmapped_ids():
    phantom = load_label_table("phantom")
    assert phantom.classes[-1] == "lesion" and phantom.n_classes == 12
    assert (phantom.to_classes(np.arange(12)) == np.arange(12)).all()
    fs = load_label_table("freesurfer_aseg")
    assert fs.n_classes == 28 and fs.classes[-1] == "lesion"
    aseg = np.array([0, 2, 41, 17, 53, 16, 4, 43])
    out = fs.to_classes(aseg)
    names = [fs.classes[i] for i in out]
    assert names == ["background", "cerebral_wm_left", "cerebral_wm_right", "hippocampus_left", "hippocampus_right",
                     "brain_stem", "lateral_ventricle_left", "lateral_ventricle_right"]
    to_ph = load_label_table("freesurfer_to_phantom")
    assert [to_ph.classes[i] for i in to_ph.to_classes(np.array([3, 42, 10]))] == ["gm_left", "gm_right",
                                                                                   "deep_grey_left"]
    with pytest.raises(DataError, match=r"seg\.nii\.gz.*label ids 99, 1000 are not in the mapping table"):
        fs.to_classes(np.array([0, 2, 99, 1000]), "seg.nii.gz")
    with pytest.raises(DataError, match="non-integer"):
        phantom.to_classes(np.array([0.5, 1.0]))


def test_table_file_errors(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("classes: [background, lesion, wm]\nmap: {0: background}\n")
    with pytest.raises(ConfigError, match="last class must be 'lesion'"):
        load_label_table(bad)
    bad.write_text("classes: [background, wm, lesion]\nmap: {0: background, 7: grey}\n")
    with pytest.raises(ConfigError, match="'grey' is not one of the classes"):
        load_label_table(bad)
    with pytest.raises(ConfigError, match="no such label table"):
        load_label_table(tmp_path / "missing.yaml")
    good = tmp_path / "g.yaml"
    good.write_text("classes: [background, wm, lesion]\nmap: {0: background, 5: wm, 9: lesion}\n")
    t = load_label_table(good)
    assert t.to_classes(np.array([0, 5, 9])).tolist() == [0, 1, 2]


def test_one_hot_axes():
    lab = np.array([[0, 1], [2, 1]])
    oh = one_hot(lab, 3)
    assert oh.shape == (3, 2, 2) and oh.sum(0).eq(1).all() and oh[2, 1, 0] == 1
    assert one_hot(np.stack([lab, lab]), 3, dim=1).shape == (2, 3, 2, 2)


def test_prepare_mr_case_scaling_lesion_and_grid_error():
    lab = _labels()
    lesion = np.zeros_like(lab)
    lesion[4:7, 4:7, 1:3] = 1
    table = load_label_table("phantom")
    v = prepare_mr_case(_case(lab, lesion), table, size=20)
    assert v.classes.shape == (20, 20, 4) and v.image.shape == (20, 20, 4)
    assert (v.classes[v.lesion] == table.lesion).all() and v.lesion_voxels == 18
    brain = v.classes > 0
    assert v.image[~brain].max() == -1 and v.image[brain].max() == 1.0  # clipped at the 99.5th percentile
    assert np.isclose(v.affine[0, 3], -2 * 2.0)  # padded by 2 voxels on each side in x
    ds = TranslationSlices([v], table.n_classes)
    s = ds[0]
    assert s["label"].shape == (12, 20, 20) and s["image"].shape == (1, 20, 20)
    assert ds.lesion_flags().tolist() == [False, True, True, False]
    with pytest.raises(DataError, match="data/c1: label map 'anatomy' .* different grid from its 'dwi'"):
        prepare_mr_case(_case(lab, dwi_shape=(16, 16, 5)), table, size=16)
    with pytest.raises(DataError, match="no case has a lesion mask of 20 voxels or more"):
        LesionMasks([v])


def test_injection_only_in_parenchyma_and_bounded_retries():
    table = load_label_table("phantom")
    lab = _labels()
    assert sorted(table.classes[i] for i in parenchyma_classes(table)) == sorted(
        ["gm_right", "gm_left", "wm_right", "wm_left", "deep_grey_right", "deep_grey_left"])
    mask = np.zeros(lab.shape, bool)
    mask[1:10, 1:10, :] = True  # covers background, CSF, ventricle and GM
    lesion = inject(lab, mask, table)
    assert lesion is not None and lesion.sum() > 20
    assert np.isin(lab[lesion], [3, 6]).all() and not lesion[lab == 2].any() and not lesion[lab <= 1].any()
    tiny = np.zeros(lab.shape, bool)
    tiny[3:5, 3:5, 0] = True  # 4 voxels
    assert inject(lab, tiny, table) is None
    draws = iter([tiny, tiny, mask])
    out, les, attempts = inject_with_retries(lab, lambda: next(draws), table, retries=5)
    assert attempts == 3 and (out[les] == table.lesion).all() and (out[~les] == lab[~les]).all()
    with pytest.raises(DataError, match="no generated lesion left 20 voxels in the parenchyma in 4 draws"):
        inject_with_retries(lab, lambda: tiny, table, retries=4)
