"""Atomic outputs: one writer per output, stale locks and temporaries of killed runs, the umask."""

import os
import stat
import subprocess
import sys

import pytest

from strokesynth._fs import atomic_dir, atomic_file, claim_output, clean_stale_temporaries, output_lock
from strokesynth.errors import OutputError

from conftest import run_cli


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_second_writer_is_refused_in_one_line(capsys, tmp_path, isles2018_dir):
    dest = tmp_path / "nn"
    (tmp_path / ".nn.lock").write_text("1\n")  # pid 1 always exists: a live writer
    code, _, err = run_cli(capsys, "convert", str(isles2018_dir), str(dest), "--to", "plain")
    assert code == 2 and "another strokesynth process (pid 1)" in err and len(err.strip().splitlines()) == 1
    assert not dest.exists()
    (tmp_path / ".nn.lock").write_text(f"{_dead_pid()}\n")  # its process is gone: stale, taken over
    code, _, err = run_cli(capsys, "convert", str(isles2018_dir), str(dest), "--to", "plain")
    assert code == 0, err
    assert dest.is_dir() and not (tmp_path / ".nn.lock").exists()


def test_lock_is_reentrant_and_released(tmp_path):
    with output_lock(tmp_path / "out") as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
        with output_lock(tmp_path / "out") as inner:
            assert inner is None
    assert not lock.exists()
    claim_output(tmp_path / "run")  # held until exit, re-entrant for this process
    claim_output(tmp_path / "run")
    assert (tmp_path / ".run.lock").exists()


def test_output_that_appears_meanwhile_is_kept(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(OutputError, match="appeared while"):
        with atomic_dir(dest) as tmp:
            (tmp / "mine.txt").write_text("new")
            dest.mkdir()
            (dest / "theirs.txt").write_text("old")  # another tool wrote it in the meantime
    assert (dest / "theirs.txt").read_text() == "old" and not (dest / "mine.txt").exists()


def test_temporaries_of_killed_runs_are_removed(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    stale = tmp_path / f".best.pt.{dead}.abcd_123.partial.pt"
    stale_dir = tmp_path / f".out.{dead}.k2j4h5g6.partial"
    mine = tmp_path / f".last.pt.{live}.zzzzzzzz.partial.pt"
    unrelated = tmp_path / ".hidden.partial"
    for p in (stale, mine, unrelated):
        p.write_text("x")
    stale_dir.mkdir()
    with atomic_file(tmp_path / "new.json") as tmp:
        tmp.write_text("{}")
    assert not stale.exists() and not stale_dir.exists()
    assert mine.exists() and unrelated.exists() and (tmp_path / "new.json").exists()
    assert clean_stale_temporaries(tmp_path) == []


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        with atomic_file(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "a.txt").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o775
