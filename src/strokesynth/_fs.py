"""Atomic writes: a file or folder appears complete, or not at all.

Files are written under a hidden temporary name in the destination folder and moved into
place with :func:`os.replace` (atomic on POSIX within one file system). Whole output folders
(a converted data set, a run) are built in a hidden sibling folder and renamed at the end, so
an error or a kill never leaves a half-written result, and an existing result is only
replaced when the caller passes ``force=True``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from strokesynth.errors import OutputError


def ensure_writable_dir(path: Path) -> None:
    """Create ``path`` (and parents) or raise :class:`OutputError` saying why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (PermissionError, FileExistsError, NotADirectoryError, OSError) as exc:
        raise OutputError(path, f"cannot create output folder ({exc.strerror or exc})") from None
    if not path.is_dir():
        raise OutputError(path, "output path exists and is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(path, "output folder is not writable")


#: The inputs of the running command: (resolved path, how the user named it). Filled by the CLI
#: (:func:`protect_inputs`) before anything is written; every writer here refuses an output
#: that is, holds or lies inside one of them.
_INPUTS: list[tuple[Path, str]] = []


def resolve_output(path: str | os.PathLike) -> Path:
    """``path`` made absolute with every symlink followed (a link to a folder names the folder):
    the one name under which an output is checked, locked and replaced."""
    return Path(os.path.realpath(Path(path).expanduser()))


def protect_inputs(inputs: Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    """Declare the running command's inputs, as (label, path); empty or missing paths are skipped.

    Labels name the option the user gave (``--input``, ``data.dataset``) for the error line."""
    for label, path in inputs:
        if path is None or str(path) == "":
            continue
        real = resolve_output(path)
        if real.exists() and all(real != p for p, _ in _INPUTS):
            _INPUTS.append((real, label))


def release_inputs() -> None:
    """Forget the declared inputs (the CLI calls it when a command ends)."""
    _INPUTS.clear()


def overlap(output: Path, input_: Path) -> str | None:
    """How the resolved ``output`` touches the resolved ``input_``: ``"is"``, ``"holds"``,
    ``"lies inside"`` or None."""
    if output == input_:
        return "is"
    if output in input_.parents:
        return "holds"
    if input_ in output.parents:
        return "lies inside"
    return None


def check_output(path: str | os.PathLike, label: str = "output") -> Path:
    """Refuse an output that is, holds or lies inside a declared input; returns it resolved.

    Raises:
        OutputError: naming the output and the input, before anything is written.
    """
    real = resolve_output(path)
    for inp, name in _INPUTS:
        how = overlap(real, inp)
        if how is not None:
            raise OutputError(path, f"{label} {how} the input given as {name} ({inp}); an output is never an "
                                    "input, nor holds or lies inside one: choose another place")
    return real


#: Temporary names: ``.<name>.<pid>.<random>.partial[<suffix>]`` (and ``.old`` for a replaced
#: folder). The pid lets a later run remove what a killed one left behind.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]{8}\.(?:partial|old)")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files and folders that killed strokesynth processes left in ``folder``.

    Only names of the :data:`_TEMP` pattern whose process no longer exists are removed; returns them.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or pid_alive(int(match["pid"])):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    ``suffix`` keeps the extension that writers look at (``".nii.gz"``); by default it is
    everything after the first dot of the file name. The file gets the permissions the umask
    gives a new file; temporaries of killed runs in the folder are removed first.
    """
    path = Path(path)
    check_output(path)
    ensure_writable_dir(path.parent)
    clean_stale_temporaries(path.parent)
    if suffix is None:
        name = path.name
        suffix = name[name.index(".") :] if "." in name else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=f".partial{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


#: Locks this process holds: resolved lock path -> (open file descriptor holding its ``flock``, pid);
#: a forked child (a data loader worker) inherits the table but never releases its parent's locks.
_HELD: dict[Path, tuple[int, int]] = {}


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _acquire(dest: Path) -> Path | None:
    """Take ``.<name>.lock`` next to ``dest`` (its path resolved, symlinks followed); None if this
    process holds it already.

    The lock is an exclusive ``fcntl.flock`` on the file, so taking it is one atomic step of the
    kernel and a killed holder's lock is released with its process: no stale lock is ever
    removed by guesswork. The file holds the holder's pid for the message only. Released locks
    unlink the file; an acquirer that got the lock on a file unlinked meanwhile retries.
    """
    dest = resolve_output(dest)
    ensure_writable_dir(dest.parent)
    lock = dest.parent / f".{dest.name}.lock"
    if lock in _HELD:
        return None
    for _ in range(50):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666 & ~_umask())
        except OSError as exc:
            raise OutputError(dest, f"cannot take the lock {lock} ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            owner = _lock_owner(lock)
            who = f"pid {owner}" if owner else "pid unknown"
            raise OutputError(dest, f"another strokesynth process ({who}) is writing this output; "
                                    "wait for it to finish or stop it") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (unlinked) it between our open and flock: take the new file
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[lock] = (fd, os.getpid())
        return lock
    raise OutputError(dest, f"cannot take the lock {lock}")


def _release(lock: Path) -> None:
    held = _HELD.get(lock)
    if held is None or held[1] != os.getpid():
        return
    fd = _HELD.pop(lock)[0]
    with contextlib.suppress(OSError):
        lock.unlink()  # while still holding it: whoever opened the old file retries on a new one
    with contextlib.suppress(OSError):
        os.close(fd)


@contextlib.contextmanager
def output_lock(dest: str | os.PathLike) -> Iterator[Path | None]:
    """Hold ``.<name>.lock`` next to ``dest`` for the block: one writer per output.

    A second process asking for the same output gets an :class:`OutputError` naming the
    first one's pid; a lock whose process is gone (killed) is taken over. Re-entrant.
    """
    lock = _acquire(Path(dest))
    try:
        yield lock
    finally:
        if lock is not None:
            _release(lock)


_CLAIMED: list[Path] = []


def claim_output(dest: str | os.PathLike) -> None:
    """Take :func:`output_lock` of ``dest`` until :func:`release_outputs` or the process exits
    (a run folder's writer)."""
    lock = _acquire(Path(dest))
    if lock is not None:
        _CLAIMED.append(lock)


def release_outputs() -> None:
    """Release every lock :func:`claim_output` took (the CLI calls it when a command ends)."""
    while _CLAIMED:
        _release(_CLAIMED.pop())


atexit.register(release_outputs)


def _move_into_place(src: Path, dest: Path) -> None:
    """Rename folder ``src`` to ``dest``; an existing ``dest`` is moved aside first and deleted only
    once ``src`` is in its place."""
    if not dest.exists():
        os.replace(src, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".old", dir=dest.parent))
    old.rmdir()
    os.replace(dest, old)
    os.replace(src, dest)
    shutil.rmtree(old, ignore_errors=True)


def staging_dir(dest: str | os.PathLike) -> Path:
    """The folder a :func:`resumable_dir` for ``dest`` stages in (``.<name>.unfinished`` beside it)."""
    dest = resolve_output(dest)
    return dest.parent / f".{dest.name}.unfinished"


@contextlib.contextmanager
def resumable_dir(dest: str | os.PathLike, *, force: bool = False, resume: bool = False) -> Iterator[Path]:
    """Like :func:`atomic_dir`, for batch work that can continue after a kill or an error.

    The block writes into :func:`staging_dir` ``(dest)``, which is renamed to ``dest`` when the
    block succeeds and is *kept* when the process is killed or the block fails after finishing
    an item (a visible sub-folder; with none it is removed, so a bad input leaves nothing behind).
    ``resume=True`` then yields the same folder with what it holds (the block skips what is done);
    ``resume=False`` starts it afresh. Items inside should be written atomically (a folder renamed
    into place).

    Raises:
        OutputError: as :func:`atomic_dir` (``dest`` exists and is not empty without ``force``,
            another process writes it).
    """
    dest = check_output(dest)
    if dest.exists() and not dest.is_dir():
        raise OutputError(dest, "output path exists and is not a folder")
    if dest.exists() and not force and any(dest.iterdir()):
        raise OutputError(dest, "output folder exists and is not empty (use --force to replace it)")
    ensure_writable_dir(dest.parent)
    staging = staging_dir(dest)
    with output_lock(dest):
        clean_stale_temporaries(dest.parent)
        if staging.exists() and not resume:
            shutil.rmtree(staging)
        staging.mkdir(exist_ok=True)
        try:
            yield staging
        except BaseException:
            if not any(p.is_dir() and not p.name.startswith(".") for p in staging.iterdir()):
                shutil.rmtree(staging, ignore_errors=True)  # nothing finished: nothing to resume
            raise
        os.chmod(staging, 0o777 & ~_umask())
        _move_into_place(staging, dest)


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder next to ``dest``; rename it to ``dest`` if the block succeeds.

    One writer at a time (:func:`output_lock`); if ``dest`` appeared while the block ran (another
    tool wrote it), it is not replaced unless ``force``. The folder gets the permissions the
    umask gives a new folder.

    Raises:
        OutputError: ``dest`` exists and is not empty while ``force`` is false, another process
            writes it, or its parent cannot be written.
    """
    dest = check_output(dest)
    if dest.exists() and not dest.is_dir():
        raise OutputError(dest, "output path exists and is not a folder")
    if dest.exists() and not force:
        if any(dest.iterdir()):
            raise OutputError(dest, "output folder exists and is not empty (use --force to replace it)")
    ensure_writable_dir(dest.parent)
    with output_lock(dest):
        clean_stale_temporaries(dest.parent)
        existed = dest.exists() and any(dest.iterdir())
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".partial", dir=dest.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())
            if dest.exists() and not force and not existed and any(dest.iterdir()):
                raise OutputError(dest, "output folder appeared while this was being written; kept it, "
                                        "nothing written (use --force to replace it)")
            _move_into_place(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
