import numpy as np
import pytest

from strokesynth.data.case import Case
from strokesynth.data.modalities import Modality, get_modality, register_modality
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError


def aff(spacing=(1.0, 1.0, 5.0)):
    a = np.eye(4)
    a[:3, :3] = np.diag(spacing)
    return a


def test_volume_dtype_policy_and_geometry():
    v = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), aff((0.9, 0.9, 5.0)))
    assert v.array.dtype == np.float32
    assert v.spacing == pytest.approx((0.9, 0.9, 5.0))
    assert v.voxel_volume_ml == pytest.approx(0.9 * 0.9 * 5 / 1000)
    lab = Volume(np.array([[[0.0, 1.0], [1.0, 0.0]]] * 2), aff(), kind="label")
    assert lab.array.dtype == np.uint8


@pytest.mark.parametrize(
    "array,kind,message",
    [
        (np.full((2, 2, 2), np.nan), "image", "NaN/Inf"),
        (np.full((2, 2, 2), np.inf), "image", "NaN/Inf"),
        (np.full((2, 2, 2), 0.5), "label", "non-integer"),
        (np.full((2, 2, 2), -1), "label", "negative"),
        (np.zeros((2, 2)), "image", "3D"),
    ],
)
def test_volume_rejects_bad_arrays(array, kind, message):
    with pytest.raises(DataError, match=message):
        Volume(array, aff(), kind=kind)


def test_with_array_keeps_affine_and_checks_shape():
    v = Volume(np.zeros((4, 5, 2)), aff((2, 2, 2)))
    w = v.with_array(np.ones((4, 5, 2)), kind="label")
    assert np.array_equal(w.affine, v.affine) and w.kind == "label"
    with pytest.raises(DataError, match="does not match"):
        v.with_array(np.ones((4, 4, 2)))


def _case(**vols):
    return Case("c1", "s1", vols)


def test_case_grid_checks():
    a = Volume(np.zeros((4, 4, 3)), aff())
    _case(ct=a, cbf=Volume(np.zeros((4, 4, 3)), aff()))
    with pytest.raises(DataError, match="does not match"):
        _case(ct=a, cbf=Volume(np.zeros((4, 5, 3)), aff()))
    with pytest.raises(DataError, match="affine of"):
        _case(ct=a, cbf=Volume(np.zeros((4, 4, 3)), aff((1.0, 1.0, 4.0))))
    # an own-grid modality may differ
    Case("c1", "s1", {"ct": a, "flair": Volume(np.zeros((8, 8, 3)), aff((0.5, 0.5, 5)))}, own_grid={"flair"})


def test_case_modality_checks():
    a = Volume(np.zeros((4, 4, 3)), aff())
    with pytest.raises(DataError, match="unknown modality 'pet'"):
        _case(ct=a, pet=a)
    with pytest.raises(DataError, match="must be 3D"):
        _case(ct=a, cbf=Volume(np.zeros((4, 4, 3, 2)), aff()))
    with pytest.raises(DataError, match="must be 4D"):
        _case(ct=a, ctp=a)
    with pytest.raises(DataError, match="single slice"):
        _case(ct=Volume(np.zeros((4, 4, 1)), aff()))
    with pytest.raises(DataError, match="missing modality 'cbf'"):
        _case(ct=a)["cbf"]
    with pytest.raises(DataError, match="label"):
        _case(ct=a, lesion=a)


def test_lesion_volume_ml():
    lab = np.zeros((10, 10, 4), np.uint8)
    lab[2:4, 2:4, 1] = 1
    c = _case(ct=Volume(np.zeros((10, 10, 4)), aff((0.5, 0.5, 5))), lesion=Volume(lab, aff((0.5, 0.5, 5)), kind="label"))
    assert c.lesion_volume_ml() == pytest.approx(4 * 0.5 * 0.5 * 5 / 1000)


def test_register_modality():
    register_modality(Modality("dwi_test", 3, "image", "a.u.", "test"), replace=True)
    assert get_modality("dwi_test").kind == "image"
    a = Volume(np.zeros((4, 4, 3)), aff())
    assert "dwi_test" in _case(ct=a, dwi_test=a)
    with pytest.raises(ValueError, match="already registered"):
        register_modality(Modality("dwi_test", 3, "image", "a.u.", "test"))
