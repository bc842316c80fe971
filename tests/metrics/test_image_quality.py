"""SSIM / PSNR / lesion box against scikit-image and closed forms."""

import math

import numpy as np
import pytest

from strokesynth.metrics import image_quality, lesion_box, psnr, ssim_map

skm = pytest.importorskip("skimage.metrics", reason="scikit-image is the independent SSIM/PSNR reference")


def _pair(seed: int = 0, shape=(48, 40, 3)):
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    real = ndimage.gaussian_filter(rng.random(shape), (2, 2, 0))
    gen = np.clip(real + rng.normal(0, 0.05, shape), 0, 1)
    return gen, real


def test_ssim_map_is_per_slice_and_matches_closed_forms():
    gen, real = _pair()
    ours = ssim_map(gen, real, data_range=1.0)
    assert ours.shape == gen.shape
    np.testing.assert_array_equal(ours[..., 1], ssim_map(gen[..., 1], real[..., 1]))  # slices are independent
    assert ssim_map(real, real).min() == pytest.approx(1.0)
    # constant images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.3, 0.6, (0.01 * 1.0) ** 2
    const = ssim_map(np.full((24, 24), a), np.full((24, 24), b))
    np.testing.assert_allclose(const, (2 * a * b + c1) / (a * a + b * b + c1), rtol=1e-12)


def test_psnr_matches_skimage_and_closed_form():
    gen, real = _pair(1)
    assert psnr(gen, real, data_range=1.0) == pytest.approx(skm.peak_signal_noise_ratio(real, gen, data_range=1.0))
    a = np.zeros((4, 4, 2))
    b = a.copy()
    b[0, 0, 0] = 0.5  # MSE over a 2-voxel mask = 0.125 -> 10 log10(8)
    mask = np.zeros(a.shape, bool)
    mask[0, :2, 0] = True
    assert psnr(b, a, mask) == pytest.approx(10 * math.log10(8))
    assert psnr(a, a) == math.inf


def test_lesion_box_margin_slices_and_empty():
    les = np.zeros((40, 40, 4), np.uint8)
    les[10:14, 20:22, 1] = 1
    box = lesion_box(les, margin_px=3)
    assert box[:, :, 1].sum() == (14 + 3 - 7) * (22 + 3 - 17)
    assert not box[:, :, [0, 2, 3]].any()
    assert lesion_box(np.zeros((5, 5, 2))) is None


def test_image_quality_regions_and_undefined_lesion_values():
    gen, real = _pair(2)
    brain = np.zeros(real.shape, bool)
    brain[5:40, 5:35] = True
    les = np.zeros(real.shape, np.uint8)
    les[20:25, 20:25, 1] = 1
    q = image_quality(gen, real, brain, les)
    assert 0 < q["ssim_brain"] < 1 and q["psnr_brain"] > 20 and q["box_voxels"] > 25
    np.testing.assert_allclose(q["mae_brain"], np.abs(gen - real)[brain].mean())
    empty = image_quality(gen, real, brain, np.zeros_like(les))
    assert math.isnan(empty["ssim_lesion"]) and math.isnan(empty["psnr_lesion"]) and empty["box_voxels"] == 0
    assert q["contrast_real"] == pytest.approx(real[les > 0].mean() / real[brain & (les == 0)].mean())
    assert math.isnan(empty["contrast_generated"])
    perfect = image_quality(real, real, brain, les)
    assert perfect["ssim_brain"] == pytest.approx(1.0) and perfect["psnr_brain"] == math.inf
