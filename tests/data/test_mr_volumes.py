"""Putting whole-brain MR cases on the label-map recipe's working grid (:func:`to_mr_grid`)."""

from __future__ import annotations

import numpy as np
import pytest

from strokesynth.data.case import Case
from strokesynth.data.mr_volumes import MRGrid, to_mr_grid
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError


def _case(shape=(64, 48, 10), spacing=(0.5, 0.5, 2.0), seed=0, lesion_z=(2, 6)) -> Case:
    rng = np.random.default_rng(seed)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-10.0, 20.0, -5.0]
    dwi = rng.uniform(0, 100, shape).astype(np.float32)
    anatomy = rng.integers(0, 6, shape).astype(np.uint8)
    lesion = np.zeros(shape, np.uint8)
    lesion[16:32, 8:24, lesion_z[0]:lesion_z[1]] = 1
    return Case("c1", "s1", {"dwi": Volume(dwi, affine), "anatomy": Volume(anatomy, affine, kind="label"),
                             "lesion": Volume(lesion, affine, kind="label"),
                             "ct": Volume(dwi, affine)}, where="c1")


def _world(affine: np.ndarray, ijk) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(ijk, float) + affine[:3, 3]


def test_integer_factors_match_block_means_and_centre_voxels():
    case = _case()
    out = to_mr_grid(case, MRGrid(spacing_mm=2.0, slice_mm=4.0))
    assert set(out.modalities) == {"dwi", "anatomy", "lesion"}  # only what the recipe reads
    assert out["dwi"].spatial_shape == (16, 12, 5) and out["dwi"].spacing == pytest.approx((2.0, 2.0, 4.0))
    dwi = np.asarray(case["dwi"].array)
    blocks = dwi.reshape(16, 4, 12, 4, 5, 2).mean(axis=(1, 3, 5))  # an image: the mean of each new voxel
    np.testing.assert_allclose(out["dwi"].array, blocks, rtol=1e-5)
    labels = np.asarray(case["anatomy"].array)[2::4, 2::4, 1::2]  # a label: the stored voxel at the new centre
    np.testing.assert_array_equal(out["anatomy"].array, labels)
    assert out["anatomy"].array.dtype == np.uint8 and out["anatomy"].kind == "label"
    # the field of view is kept: the new first voxel lies at the centre of the 4 x 4 x 2 stored ones
    np.testing.assert_allclose(_world(out["dwi"].affine, [0, 0, 0]), _world(case["dwi"].affine, [1.5, 1.5, 0.5]))
    np.testing.assert_allclose(_world(out["dwi"].affine, [15, 11, 4]), _world(case["dwi"].affine, [61.5, 45.5, 8.5]))
    assert out.meta == case.meta and out["lesion"].same_grid(out["dwi"])


def test_slices_are_centre_cropped_or_padded_and_the_affine_follows():
    case = _case()
    out = to_mr_grid(case, MRGrid(slices=4))
    np.testing.assert_array_equal(out["dwi"].array, np.asarray(case["dwi"].array)[:, :, 3:7])
    np.testing.assert_allclose(_world(out["dwi"].affine, [0, 0, 0]), _world(case["dwi"].affine, [0, 0, 3]))
    out = to_mr_grid(case, MRGrid(slices=16))
    assert out["lesion"].spatial_shape == (64, 48, 16)
    np.testing.assert_array_equal(out["lesion"].array[:, :, 3:13], case["lesion"].array)
    assert not out["dwi"].array[:, :, :3].any() and not out["dwi"].array[:, :, 13:].any()
    np.testing.assert_allclose(_world(out["dwi"].affine, [0, 0, 3]), _world(case["dwi"].affine, [0, 0, 0]))


def test_a_non_integer_factor_keeps_the_lesion_volume_and_the_extent():
    case = _case(shape=(80, 80, 10), spacing=(0.45, 0.45, 2.0), lesion_z=(2, 8))
    out = to_mr_grid(case, MRGrid(spacing_mm=1.8, slice_mm=5.0))  # 80 -> 20 in plane, 10 -> 4 slices (2.5)
    assert out["dwi"].spatial_shape == (20, 20, 4)
    assert out["dwi"].spacing == pytest.approx((1.8, 1.8, 5.0))
    ml = [float(np.asarray(c["lesion"].array).sum()) * np.prod(c["lesion"].spacing) for c in (case, out)]
    assert ml[1] == pytest.approx(ml[0], rel=0.3)
    # mean intensity is kept where the new grid averages over whole stored voxels
    assert float(out["dwi"].array.mean()) == pytest.approx(float(np.asarray(case["dwi"].array).mean()), rel=0.02)


def test_as_stored_keeps_the_arrays_and_bad_grids_are_refused():
    case = _case()
    out = to_mr_grid(case, MRGrid())
    assert out["dwi"] is case["dwi"] and "ct" not in out
    with pytest.raises(ConfigError, match="must not be negative"):
        MRGrid(slices=-1)
    other = Volume(np.zeros((32, 48, 10), np.uint8), np.diag([1.0, 0.5, 2.0, 1.0]), kind="label")
    bad = Case("c2", "s2", {"dwi": case["dwi"], "anatomy": other}, own_grid={"anatomy"}, where="c2")
    with pytest.raises(DataError, match="different grid"):
        to_mr_grid(bad, MRGrid(spacing_mm=2.0))
