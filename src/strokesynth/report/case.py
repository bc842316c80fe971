"""One self-contained HTML page per predicted case: volumes, mismatch, the overlay, how the maps were made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strokesynth.report.html import figure, fmt, table, write_page


def write_case_page(folder: Path, row: dict[str, Any]) -> Path:
    """Write ``folder/report.html`` for one case of ``predict`` (``row``: what volumes.json holds for
    it, plus ``threshold``, ``tmax_threshold_s``, ``z`` and ``perfusion``, the analysis of a raw CTP
    or ``None``). The overlay PNG beside it is embedded."""
    tmax = row["tmax_threshold_s"]
    rows = [[f"predicted core (probability > {fmt(row['threshold'], 2)})", fmt(row["core_ml"], 1) + " ml"]]
    if row.get("hypoperfusion_ml") is not None:
        rows += [[f"hypoperfusion (Tmax > {tmax:g} s)", fmt(row["hypoperfusion_ml"], 1) + " ml"],
                 ["mismatch volume (hypoperfusion minus core)", fmt(row["mismatch_ml"], 1) + " ml"],
                 ["mismatch ratio (hypoperfusion / core)", fmt(row["mismatch_ratio"], 2)]]
    else:
        rows.append(["hypoperfusion", "no Tmax map and no raw CTP to compute one"])
    rows.append(["models averaged", str(row["models"])])
    if row.get("brain_ml") is not None:
        rows.append([f"brain ({row.get('brain_mask', '')}); core kept within it", fmt(row["brain_ml"], 1) + " ml"])
    for flag in row.get("flags") or []:
        rows.append(["WARNING", flag])
    volumes = table(rows, ["", "value"])
    note = ("<p class='note'>A research tool's estimate, not a diagnosis: the core is the networks' output on "
            "this scan and the hypoperfusion the Tmax map's; neither was checked by a reader.</p>")
    sections = [("volumes", "Volumes", volumes + note),
                ("overlay", "Slice with the largest predicted core",
                 figure(folder / "overlay.png", f"slice z={row['z']}: predicted core outlined in red"))]
    perf = row.get("perfusion")
    if perf:
        inv = perf.get("invalid", {})
        bad = ", ".join(f"{k.upper()} {fmt(v.get('percent'), 2)} %" for k, v in inv.items() if isinstance(v, dict))
        timing = perf.get("frame_timing") or {}
        frames = f"{perf['frames']} at {perf['dt_s']:g} s" + (f" ({timing['source']}" if timing else "") + (
            f"; resampled onto {timing['resampled_frames']} uniform frames)" if timing.get("uneven") else ")" if timing else "")
        prow = [["method", str(perf["method"])], ["frames", frames],
                ["bolus window (frames)", f"{perf['bolus_window'][0]}-{perf['bolus_window'][1]}"],
                ["AIF peak", f"{fmt(perf['aif_peak_hu'], 0)} HU at {fmt(perf['aif_peak_time_s'], 1)} s"],
                *([["AIF arrival (half-height of its rise)", f"{fmt(aif.get('arrival_s'), 2)} s"],
                   ["AIF location (mean voxel x, y, z)", ", ".join(fmt(v, 0) for v in aif.get("location_voxel") or [])
                    or "given"]] if (aif := perf.get("aif")) else []),
                ["venous scaling of the AIF", perf.get("venous_scaling") or fmt(perf.get("venous_scale"), 2)],
                ["brain voxels set to 0 (physically impossible)", bad or "–"],
                ["time", f"{fmt(perf['seconds'], 1)} s"]]
        sections.append(("maps", "Perfusion maps computed from the raw 4D CTP",
                         table(prow, ["", "value"])
                         + (figure(folder / "maps" / "aif.png", "the arterial input function the maps were computed "
                                   "with: its arrival (dashed) and peak (dotted); the venous output that scaled it in blue")
                            if (folder / "maps" / "aif.png").is_file() else "")
                         + "<p class='note'>The maps are in maps/ beside this page.</p>"))
    else:
        sections.append(("maps", "Perfusion maps", "<p>The case's own maps were used.</p>"))
    return write_page(folder / "report.html", f"strokesynth: {row['case']}", sections)


__all__ = ["write_case_page"]
