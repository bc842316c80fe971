"""Start-up time of the command line: what a user (and every subprocess of the test suite) waits
before a command begins.

Each command runs in a fresh interpreter (``python -m strokesynth.cli ...``), 7 times; the table
gives the median and the best wall time, peak resident memory of the process (``ru_maxrss`` of
the child, MB), and the ratio to the reference measured in the same run: a bare interpreter
(``python -c pass``). ``import torch`` is shown beside it as what a command that needs a network
pays on top. Goals (issue 38): ``--help`` under 0.5 s, ``train --help`` under 1.5 s.
Run: ``python benchmarks/bench_cli_start.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import report

REPEATS = 7
COMMANDS = {
    "reference: python -c pass": ["-c", "pass"],
    "strokesynth --help": ["-m", "strokesynth.cli", "--help"],
    "strokesynth check --help": ["-m", "strokesynth.cli", "check", "--help"],
    "strokesynth train --help": ["-m", "strokesynth.cli", "train", "--help"],
    "strokesynth recipe list": ["-m", "strokesynth.cli", "recipe", "list"],
    "strokesynth recipe pseudo-dwi --help": ["-m", "strokesynth.cli", "recipe", "pseudo-dwi", "--help"],
    "python -c 'import torch'": ["-c", "import torch"],
    "python -c 'import monai.networks.nets'": ["-c", "import monai.networks.nets"],
}


def _one(args: list[str]) -> float:
    """Wall seconds of one fresh interpreter running ``args``."""
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    times: dict[str, list[float]] = {}
    peaks: dict[str, float] = {}
    for _ in range(REPEATS):  # interleaved, so that a busy moment of the machine hits every command alike
        for name, args in COMMANDS.items():
            times.setdefault(name, []).append(_one(args))
    for name, args in COMMANDS.items():  # peak RSS (kB): one run each, measured by a parent of its own
        out = subprocess.run([sys.executable, "-c", (
            "import resource, subprocess, sys; subprocess.run([sys.executable, *sys.argv[1:]], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"), *args],
            check=True, capture_output=True, text=True)
        peaks[name] = int(out.stdout.strip()) / 1024
    ref = statistics.median(times["reference: python -c pass"])
    rows = []
    for name in COMMANDS:
        med = statistics.median(times[name])
        rows.append({"command": name, "median_s": round(med, 3), "best_s": round(min(times[name]), 3),
                     "peak_rss_MB": round(peaks[name], 1), "ratio_vs_bare_python": round(med / ref, 2)})
    report("cli_start", rows, f"{REPEATS} runs each, interleaved; reference: a bare interpreter, median {ref:.3f} s")


if __name__ == "__main__":
    main()
