"""The ``strokesynth perfusion`` job: find the 4D scan, analyse it, write the maps atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth._fs import atomic_dir, write_json_atomic
from strokesynth.config import load_config, to_dict
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.io.nifti import NIFTI_SUFFIXES, read_sidecar, read_volume, write_volume
from strokesynth.perfusion.maps import PerfusionConfig, analyze_ctp
from strokesynth.plots import input_function_figure


def find_ctp(source: Path) -> Path:
    """The 4D file itself, or the CT_4DPWI file of an ISLES 2018 case folder."""
    if not source.exists():
        raise DataError(source, "no such file or folder")
    if source.is_file():
        return source
    hits = sorted(p for p in source.glob("SMIR.*CT_4DPWI*/*") if p.name.endswith(NIFTI_SUFFIXES))
    if len(hits) != 1:
        raise DataError(source, f"expected one SMIR.*.CT_4DPWI.*/ NIfTI in the case folder, found {len(hits)}")
    return hits[0]


def run_perfusion(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str | None = None,
    config_path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    aif_mask: str | os.PathLike | None = None,
    frame_interval: float | None = None,
    force: bool = False,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Analyse ``source`` and write the maps to ``out``; returns what perfusion.json holds.

    The frame timing comes from the JSON sidecar beside the 4D file (``FrameTimesStart``, uneven
    frames resampled), else pixdim[4], else ``frame_interval`` (s).
    """
    cfg = load_config(PerfusionConfig, config_path, [*(overrides or []), *([] if method is None else [f"method={method}"]),
                                                     *([] if frame_interval is None else [f"frame_interval_s={frame_interval}"])])
    path = find_ctp(Path(source))
    sidecar = read_sidecar(path)
    ctp = read_volume(path, ndim=4, meta=None if sidecar is None else {"sidecar": sidecar})
    mask = None
    if aif_mask is not None:
        mvol = read_volume(aif_mask, kind="label", ndim=3)
        if not mvol.same_grid(Volume(np.zeros(ctp.spatial_shape, np.float32), ctp.affine)):
            raise DataError(aif_mask, f"grid {mvol.shape} does not match the scan's {ctp.spatial_shape} (shape or affine)")
        values = [v for v in np.unique(mvol.array).tolist() if v not in (0, 1)]
        if values:
            raise DataError(aif_mask, f"the AIF mask holds values {values[:5]} besides 0 and 1")
        mask = mvol.array > 0
        if not mask.any():
            raise DataError(aif_mask, "the AIF mask is empty")
    result = analyze_ctp(ctp, cfg, aif_mask=mask)
    report = {
        "source": str(path),
        "config": to_dict(cfg),
        "dt_s": result.info["frame_timing"]["dt_s"],
        "frames": ctp.shape[3],
        **result.info,
        "aif": {**result.info["aif"], "curve_hu": [round(float(v), 3) for v in result.aif.curve],
                "voxels": result.aif.voxels.tolist()},
    }
    with atomic_dir(out, force=force) as tmp:
        for key, vol in result.maps.items():
            write_volume(vol, tmp / f"{key}.nii.gz")
        write_volume(result.mask, tmp / "mask.nii.gz")
        write_volume(result.invalid, tmp / "invalid.nii.gz")
        write_volume(Volume(result.frames, ctp.affine, dt=None), tmp / "cta_frames.nii.gz")
        write_json_atomic(tmp / "perfusion.json", report)
        input_function_figure(result.aif, float(report["dt_s"]), tmp / "aif.png", vof=result.vof,
                              title=f"{path.name}: arterial input function")
    brain = result.mask.array > 0
    timing = result.info["frame_timing"]
    echo(f"{path.name}: {ctp.shape[3]} frames at {report['dt_s']:g} s ({timing['source']}"
         + (f", resampled to {timing['resampled_frames']} uniform frames" if timing.get("uneven") else "")
         + f"), bolus window frames {result.window[0]}-{result.window[1]}, "
         f"AIF arrival {report['aif']['arrival_s']:.2f} s, peak {report['aif_peak_hu']:.0f} HU at "
         f"{report['aif_peak_time_s']:.2f} s")
    for key in ("cbf", "cbv", "mtt", "tmax"):
        v = result.maps[key].array[brain]
        bad = result.info["invalid"][key]
        echo(f"  {key}: median {np.median(v):.2f}, IQR {np.percentile(v, 25):.2f}-{np.percentile(v, 75):.2f}; "
             f"{bad['voxels']} brain voxel(s) ({bad['percent']:.2f} %) physically impossible, set to 0")
    echo(f"wrote {out}")
    return report
