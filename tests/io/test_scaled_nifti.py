"""NIfTI scaling read as the file says: images through scl_slope/scl_inter, and masks stored as
scaled integers (ISLES'24's 0/65535 x 1.5259e-5) as binary masks, on their true (oblique) grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from strokesynth.io.nifti import read_volume

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "isles24" / "derivatives"


def _scaled(path: Path, stored: np.ndarray, slope: float, inter: float) -> Path:
    img = nib.Nifti1Image(stored, np.diag([0.4, 0.4, 2.0, 1.0]), dtype=stored.dtype)
    img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_scaled_image_and_scaled_mask(tmp_path, suffix):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 2000, (8, 9, 4)).astype(np.int16)
    ct = read_volume(_scaled(tmp_path / f"ct{suffix}", stored, 2.0, -1024.0))
    assert np.allclose(ct.array, stored * 2.0 - 1024.0)
    assert np.allclose(ct.slab(slice(1, 3)), (stored * 2.0 - 1024.0)[:, :, 1:3])
    mask = np.zeros((8, 9, 4), np.uint16)
    mask[2:5, 3:6, 1:3] = 65535
    lesion = read_volume(_scaled(tmp_path / f"m{suffix}", mask, 1.5259022e-05, 0.0), kind="label")
    assert lesion.array.dtype == np.uint8 and np.array_equal(lesion.array, (mask > 0).astype(np.uint8))


def test_a_scaled_non_integer_label_is_refused(tmp_path):
    from strokesynth.errors import DataError

    mask = np.zeros((8, 9, 4), np.uint16)
    mask[2:5, 3:6, 1:3] = 3
    with pytest.raises(DataError, match="non-integer"):
        read_volume(_scaled(tmp_path / "m.nii.gz", mask, 0.5, 0.0), kind="label").array  # noqa: B018


@pytest.mark.parametrize("subject, shape, ml", [("sub-stroke0014", (512, 586, 74), 222.13),
                                                ("sub-stroke0158", (512, 512, 101), 118.93)])
def test_the_real_isles24_masks_read_binary_on_their_grid(subject, shape, ml):
    path = SHARED / subject / "ses-02" / f"{subject}_ses-02_lesion-msk.nii.gz"
    if not path.is_file():
        pytest.skip(f"ISLES'24 example masks not available ({path} absent: fresh clone without ../shared)")
    vol = read_volume(path, kind="label")
    arr = vol.array
    assert vol.shape == shape and set(np.unique(arr)) == {0, 1}
    assert float(arr.sum()) * float(np.prod(vol.spacing)) / 1000 == pytest.approx(ml, abs=0.01)
    assert np.allclose(vol.affine, nib.load(str(path)).affine, atol=1e-4)  # the oblique grid is kept
