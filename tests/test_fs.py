"""Atomic outputs: one writer per output, stale locks and temporaries of killed runs, the umask."""

import multiprocessing
import os
import stat
import subprocess
import sys
import time

import pytest

from strokesynth._fs import atomic_dir, atomic_file, claim_output, clean_stale_temporaries, output_lock
from strokesynth.errors import OutputError

from conftest import run_cli


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


_HOLDER = """
import sys, time
from pathlib import Path
from strokesynth._fs import claim_output
claim_output(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_second_writer_is_refused_in_one_line(capsys, tmp_path, isles2018_dir):
    dest = tmp_path / "nn"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(dest)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli(capsys, "convert", str(isles2018_dir), str(dest), "--to", "plain")
        assert code == 2 and f"another strokesynth process (pid {holder.pid})" in err
        assert len(err.strip().splitlines()) == 1 and not dest.exists()
    finally:
        holder.kill()  # killed outright: the kernel drops its lock, the file (with its pid) stays
        holder.wait()
    assert (tmp_path / ".nn.lock").read_text().split()[0] == str(holder.pid)
    code, _, err = run_cli(capsys, "convert", str(isles2018_dir), str(dest), "--to", "plain")
    assert code == 0, err
    assert dest.is_dir() and not (tmp_path / ".nn.lock").exists()


def test_lock_file_without_a_holder_is_no_lock(capsys, tmp_path, isles2018_dir):
    """Before the lock was a kernel lock, an empty just-created file read as owner -1 and was unlinked
    as stale under its creator; a file alone (any content) now means nothing."""
    for content in ("", "1\n", f"{_dead_pid()}\n"):
        (tmp_path / ".nn.lock").write_text(content)
        code, _, err = run_cli(capsys, "convert", str(isles2018_dir), str(tmp_path / "nn"), "--to", "plain",
                               "--force")
        assert code == 0, err


def _racer(dest, barrier, holders, peaks, index):
    """One racing process: wait at the barrier, try the lock, hold it 50 ms; records the number of
    holders it saw while holding (0: refused)."""
    from strokesynth._fs import output_lock

    barrier.wait()
    peak = 0
    try:
        with output_lock(dest):
            with holders.get_lock():
                holders.value += 1
                peak = holders.value
            time.sleep(0.05)
            with holders.get_lock():
                peak = max(peak, holders.value)
                holders.value -= 1
    except OutputError:
        pass
    peaks[index] = peak
    os._exit(0)


@pytest.mark.parametrize("stale", [False, True])
def test_racing_writers_never_share_the_lock(tmp_path, stale):
    """4 processes started together at a barrier, 60 trials each without and with the lock file a
    killed holder left (120 in all): never two holders at once, and someone always gets it."""
    ctx = multiprocessing.get_context("fork")
    racers, trials = 4, 60
    dead = _dead_pid()
    single = 0
    for trial in range(trials):
        dest = tmp_path / f"out{trial}"
        if stale:
            (tmp_path / f".out{trial}.lock").write_text(f"{dead}\n")
        barrier, holders = ctx.Barrier(racers), ctx.Value("i", 0)
        peaks = ctx.Array("i", [-1] * racers)
        procs = [ctx.Process(target=_racer, args=(dest, barrier, holders, peaks, i)) for i in range(racers)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
        seen = list(peaks)
        assert min(seen) >= 0, f"trial {trial}: a racer did not finish {seen}"
        assert max(seen) == 1, f"trial {trial}: {max(seen)} processes held the lock at once {seen}"
        single += sum(1 for p in seen if p) == 1
    assert single >= trials // 2  # the hold outlasts the start spread: mostly one holder per trial


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
