"""The fault-injection helper of the kill/resume tests (tests/conftest.py) kills at least once, even
when the resumed run is faster than the straight run it was timed on (a machine whose load dropped)."""

from __future__ import annotations

import sys

import numpy as np

from conftest import resume_under_random_kills

# a resumable job: 20 steps of 50 ms, its progress one line per step in run/progress
JOB = """
import pathlib, sys, time
p = pathlib.Path(sys.argv[1]) / "progress"
done = len(p.read_text().splitlines()) if p.exists() else 0
for i in range(done, 20):
    time.sleep(0.05)
    with p.open("a") as f:
        f.write(f"{i}\\n")
"""


def test_kills_at_least_once_when_the_straight_run_was_timed_slow(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cmd = [sys.executable, "-c", JOB, str(run)]
    # timed at 8 s (a loaded machine), the job now takes about 1 s: the first try finishes unkilled
    kills = resume_under_random_kills(cmd, {}, 8.0, np.random.default_rng(0), run)
    assert kills >= 1
    assert (run / "progress").read_text().splitlines() == [str(i) for i in range(20)]  # resumed, not restarted
    assert not run.with_name("run.before_random_kills").exists()
