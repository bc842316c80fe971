"""An ISLES'24-sized cohort end to end on this machine: `phantom --layout isles24`, `check`,
`perfusion` of one 512 x 512 x 80 x 40 CTP, `train` at a small working grid, `predict` on every
subject (vendor maps) and on one subject from its raw CTP alone, `evaluate` with the ISLES'24
metrics. Every stage runs as the CLI in a fresh process; its wall time and peak resident memory
(the child's ``ru_maxrss``) are recorded.

The ``evaluate`` stage scores every subject, training subjects included: it is there for its time
and memory; the model's held-out result is in the run's own ``metrics/``.

Reference, measured in the same run: reading every image of one subject whole with nibabel
(``get_fdata``, float64: what a user's own script holds before computing anything); each stage's
peak memory is also given as a ratio to it.
Run: ``python benchmarks/bench_isles24.py --data DIR [--subjects 18 --healthy 2]`` (writes the
cohort to DIR unless it exists; the phantom's time is then taken from its own run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import report

REFERENCE = r"""
import sys, time, resource
from pathlib import Path
import nibabel as nib
t = time.perf_counter()
total = 0
for path in sorted(Path(sys.argv[1]).rglob("*.nii.gz")):
    total += nib.load(str(path)).get_fdata().nbytes
print(time.perf_counter() - t, total)
"""


def stage(name: str, args: list[str], rows: list[dict], *, python: bool = False) -> subprocess.CompletedProcess:
    """Run ``strokesynth ARGS`` (or ``python -c``) in a child; record its wall time and peak memory."""
    cmd = [sys.executable, "-c", args[0], *args[1:]] if python else [sys.executable, "-m", "strokesynth.cli", *args]
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); "
               "print('@@', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)",
               *cmd]
    done = subprocess.run(wrapper, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    last = [line for line in done.stdout.splitlines() if line.startswith("@@")][-1].split()
    seconds, peak_kb, code = float(last[1]), int(last[2]), int(last[3])
    if code != 0:
        raise SystemExit(f"{name} failed ({code}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    rows.append({"stage": name, "seconds": round(seconds, 1), "peak_GB": round(peak_kb * 1024 / 1e9, 2)})
    print(f"{name}: {seconds:.1f} s, peak {peak_kb * 1024 / 1e9:.2f} GB", flush=True)
    return done


def reference_stage(data: Path, rows: list[dict]) -> None:
    """The reference of every ISLES'24-sized benchmark: nibabel ``get_fdata`` of the first subject."""
    first = sorted(p.name for p in (data / "derivatives").iterdir() if p.name.startswith("sub-"))[0]
    stage("reference: nibabel get_fdata of one subject's images", [REFERENCE, str(data / "derivatives" / first)],
          rows, python=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subjects", type=int, default=18)
    ap.add_argument("--healthy", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="Folder for runs and predictions [a temporary one].")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--skip", default="", help="Comma-separated stages to skip (reference, check, perfusion, train), "
                                               "e.g. when they were measured in an earlier run.")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_isles24_"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if not args.data.exists():
        stage(f"phantom --layout isles24 ({args.subjects} stroke + {args.healthy} healthy)",
              ["phantom", "--layout", "isles24", "--subjects", str(args.subjects), "--healthy", str(args.healthy),
               "--seed", "7", "--out", str(args.data)], rows)
    subjects = sorted(p.name for p in (args.data / "derivatives").iterdir() if p.name.startswith("sub-"))
    first = subjects[0]
    skip = set(filter(None, args.skip.split(",")))
    if "reference" not in skip:
        stage("reference: nibabel get_fdata of one subject's images", [REFERENCE, str(args.data / "derivatives" / first)],
              rows, python=True)
    if "check" not in skip:
        stage(f"check ({len(subjects)} subjects, every voxel read)", ["check", str(args.data)], rows)
    ctp = args.data / "derivatives" / first / "ses-01" / f"{first}_ses-01_space-ncct_ctp.nii.gz"
    if "perfusion" not in skip:
        stage("perfusion of one 512x512x80x40 CTP", ["perfusion", str(ctp), "--out", str(work / "maps"), "--force"],
              rows)
    run = work / "run"
    if "train" not in skip:
        stage(f"train unet2d_focal_tiny at 128x128 (resampled), fold 0 of 5, {args.epochs} epochs",
              ["train", "--config", str(Path(__file__).resolve().parents[1] / "configs/seg/unet2d_focal_tiny.yaml"),
               "--set", f"data.dataset={args.data}", "--set", "data.size=[128,128]", "--set", "data.mode=resample",
               "--set", f"run.epochs={args.epochs}", "--set", "run.folds=5", "--set", "run.folds_to_run=[0]",
               "--out", str(run), "--force"], rows)
    stage(f"predict {len(subjects)} subjects (vendor maps)",
          ["predict", "--model", str(run), "--input", str(args.data), "--out", str(work / "pred"), "--force"], rows)
    # one subject with its NCCT and raw CTP only: the maps are computed
    raw = work / "raw_release"
    shutil.rmtree(raw, ignore_errors=True)
    for tree in ("raw_data", "derivatives"):
        for path in (args.data / tree / first).rglob("*"):
            if path.is_file() and "perfusion-maps" not in path.parts:
                target = raw / path.relative_to(args.data)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(path, target)
    stage("predict one subject from NCCT + raw CTP (maps computed)",
          ["predict", "--model", str(run), "--input", str(raw), "--out", str(work / "pred_raw"), "--force"], rows)
    done = stage("evaluate the predictions (ISLES'24 metrics, CBF baseline)",
                 ["evaluate", "--predictions", str(work / "pred"), "--reference", str(args.data),
                  "--out", str(work / "eval"), "--force"], rows)
    ref = [r for r in rows if r["stage"].startswith("reference")]
    for row in rows:
        if ref:
            row["peak / reference"] = round(row["peak_GB"] / ref[0]["peak_GB"], 2)
    table = (work / "eval" / "table.txt").read_text() if (work / "eval" / "table.txt").exists() else done.stdout
    print(table)
    report("isles24_pipeline", rows, note=f"data {args.data} ({len(subjects)} subjects); work {work}; "
                                         f"machine RAM {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9:.0f} GB")
    (work / "evaluation_table.txt").write_text(table)


if __name__ == "__main__":
    main()
