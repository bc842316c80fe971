"""Accuracy of every deconvolution method on the phantom's curves as noise grows, and on
OSIPI's DSC DRO if ``../shared/data/osipi-dsc-dro/dsc_data.csv`` (or the path given) exists.

The reference is the ground truth of the curves. Prints the tables of ``docs/perfusion.md``.
Run: ``python benchmarks/perfusion_accuracy.py [DRO_CSV]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from strokesynth.phantom.validation import accuracy_table, osipi_accuracy, summarize_osipi

from _common import report

DEFAULT_DRO = Path(__file__).resolve().parents[2] / "shared" / "data" / "osipi-dsc-dro" / "dsc_data.csv"


def main() -> None:
    report("perfusion_accuracy", accuracy_table(repeats=200, seed=0),
           note="medians of relative errors; noise = white Gaussian SD per frame (HU); delays 0-4 s")
    dro = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DRO
    if dro.exists():
        report("perfusion_osipi", summarize_osipi(osipi_accuracy(dro)), note=f"OSIPI DSC DRO {dro}, kh = rho = 1")
    else:
        print(f"OSIPI DRO not found at {dro}; skipped")


if __name__ == "__main__":
    main()
