"""The CTP analysed in slabs from its stored dtype, and its frame timing (sidecar, pixdim, given;
uneven frames resampled)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.io.nifti import read_volume
from strokesynth.perfusion.frames import CtpFrames, frame_timing, interpolation_matrix, uniform_times
from strokesynth.perfusion.maps import PerfusionConfig, analyze_ctp
from strokesynth.phantom.validation import maps_vs_truth


def _maps(result):
    return {k: v.array for k, v in result.maps.items()}


def test_slabs_and_the_stored_int16_give_the_maps_of_the_whole_float32_array(tiny_phantom, tmp_path):
    ctp = tiny_phantom[0].case["ctp"].load()
    whole = analyze_ctp(ctp, slab_bytes=1 << 40)  # one slab
    sliced = analyze_ctp(ctp, slab_bytes=1)  # one slice per slab
    for key, ref in _maps(whole).items():
        np.testing.assert_allclose(_maps(sliced)[key], ref, atol=1e-4, err_msg=key)
    np.testing.assert_array_equal(sliced.aif.curve, whole.aif.curve)
    np.testing.assert_array_equal(sliced.frames, whole.frames)
    # the same scan read lazily from an int16 file (Fortran order on disk) with a scale slope
    raw = np.round(ctp.array / 0.5).astype(np.int16)
    image = nib.Nifti1Image(raw, ctp.affine)
    image.header.set_slope_inter(0.5, 0.0)
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = ctp.dt
    nib.save(image, tmp_path / "ctp.nii.gz")
    lazy = read_volume(tmp_path / "ctp.nii.gz", ndim=4)
    stored, slope, _ = lazy.stored()
    assert stored.dtype == np.int16 and slope == 0.5  # kept in half the bytes of float32
    from_disk = analyze_ctp(lazy, slab_bytes=1)
    in_memory = analyze_ctp(Volume(raw * np.float32(0.5), ctp.affine, dt=ctp.dt))
    for key, ref in _maps(in_memory).items():
        np.testing.assert_allclose(_maps(from_disk)[key], ref, atol=1e-4, err_msg=key)


def _ctp(n_t: int = 20, dt: float | None = 1.0, sidecar: dict | None = None) -> Volume:
    return Volume(np.zeros((4, 4, 2, n_t), np.float32), np.eye(4), dt=dt,
                  meta={"sidecar": sidecar} if sidecar is not None else None)


def test_frame_timing_prefers_the_sidecar_then_pixdim_then_the_given_interval():
    assert frame_timing(_ctp(sidecar={"FrameInterval": 2.0})).dt == 2.0
    assert frame_timing(_ctp(sidecar={"RepetitionTime": 1500, "FrameTimesUnit": "ms"})).dt == 1.5
    even = frame_timing(_ctp(sidecar={"FrameTimesStart": list(np.arange(20) * 1.2 + 3.0)}))
    assert even.dt == pytest.approx(1.2) and even.times is None
    assert frame_timing(_ctp(dt=1.0)).source == "pixdim[4]"
    assert frame_timing(_ctp(dt=None), fallback_dt=1.7).dt == 1.7
    with pytest.raises(DataError, match="frame interval of the 4D CTP is unknown"):
        frame_timing(_ctp(dt=None))
    with pytest.raises(DataError, match="has 3 times, the CTP 20 frames"):
        frame_timing(_ctp(sidecar={"FrameTimesStart": [0, 1, 2]}))
    with pytest.raises(DataError, match="not strictly increasing"):
        frame_timing(_ctp(sidecar={"FrameTimesStart": [0.0] * 20}))


def test_uneven_frames_are_interpolated_onto_the_shortest_interval():
    times = np.concatenate([np.arange(0, 30, 1.0), 30 + np.arange(1, 11) * 3.0])
    grid = uniform_times(times, 1.0)
    assert grid[0] == 0 and grid[-1] == 60 and len(grid) == 61
    w = interpolation_matrix(times, grid)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    signal = 2.0 * times + 1.0  # a line is interpolated exactly
    np.testing.assert_allclose(w @ signal, 2.0 * grid + 1.0, atol=1e-4)
    ctp = Volume(np.broadcast_to(signal.astype(np.float32), (3, 3, 2, len(times))).copy(), np.eye(4),
                 dt=1.0, meta={"sidecar": {"FrameTimesStart": times.tolist()}})
    frames = CtpFrames(ctp, frame_timing(ctp))
    assert frames.shape == (3, 3, 2, 61) and frames.dt == 1.0
    np.testing.assert_allclose(frames.curves(np.ones((3, 3, 2), bool))[0], 2.0 * grid + 1.0, atol=1e-4)
    np.testing.assert_allclose(frames.frame(45), 91.0, atol=1e-4)


def test_an_unevenly_sampled_scan_keeps_the_normal_tissue_values_of_the_evenly_sampled_one(tiny_phantom):
    """The phantom's 1.25 s frames, kept every frame for 30 s and every third frame after that (a
    common protocol shape), with the times in a sidecar and none in the header: resampled to 1.25 s,
    normal tissue keeps the CBF, CBV and Tmax of the analysis of every frame (against the phantom's
    truth). Measured on these 3 scans: CBF ratio within 0.005, CBV within 0.025, Tmax bias within
    0.13 s. (The core and the Tmax > 6 s region lose more: docs/perfusion.md, "Uneven frames".)"""
    for scan in tiny_phantom:
        ctp = scan.case["ctp"].load()
        dt, n_t = ctp.dt, ctp.shape[-1]
        keep = np.array([i for i in range(n_t) if i * dt <= 30 or (i - int(30 / dt)) % 3 == 0])
        assert len(keep) < n_t
        uneven = Volume(ctp.array[..., keep], ctp.affine, dt=None,
                        meta={"sidecar": {"FrameTimesStart": (keep * dt).tolist()}})
        truth = {k: v.array for k, v in scan.truth.items()}
        scores = []
        for volume in (Volume(ctp.array[..., : keep[-1] + 1], ctp.affine, dt=dt), uneven):
            result = analyze_ctp(volume)
            maps = {k: result.maps[k].array for k in ("cbf", "cbv", "tmax")}
            scores.append(maps_vs_truth(maps, truth, aif_voxels=result.aif.voxels))
        timing = result.info["frame_timing"]
        assert timing["uneven"] and timing["resampled_frames"] == keep[-1] + 1
        assert timing["dt_s"] == pytest.approx(dt, abs=1e-3)
        full, resampled = scores
        assert abs(full["cbf_ratio_normal"] - resampled["cbf_ratio_normal"]) <= 0.02, scores
        assert abs(full["cbv_ratio_normal"] - resampled["cbv_ratio_normal"]) <= 0.05, scores
        assert abs(full["tmax_err_normal_s"] - resampled["tmax_err_normal_s"]) <= 0.3, scores


def test_the_analysis_refuses_a_ctp_without_any_frame_timing():
    ctp = Volume(np.zeros((8, 8, 2, 20), np.float32), np.eye(4), dt=None)
    with pytest.raises(DataError, match="give --frame-interval"):
        analyze_ctp(ctp)
    with pytest.raises(DataError, match="outside what CT perfusion protocols use"):
        analyze_ctp(ctp, PerfusionConfig(frame_interval_s=1000.0))
