"""Checkpoints that load with ``torch.load(..., weights_only=True)``, written atomically."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import torch

from strokesynth import __version__
from strokesynth._fs import atomic_file
from strokesynth.errors import DataError

#: Fault injection for the kill tests: with ``STROKESYNTH_KILL_AT_SAVE=N`` the process kills itself
#: (SIGKILL) during its N-th checkpoint save, after the data is written and before it is moved into place.
_SAVES = [0]


#: Key of the SHA-256 over everything else in a checkpoint (see :func:`payload_digest`).
CHECKSUM_KEY = "sha256"


def _feed(digest: Any, node: Any, where: str) -> None:
    if isinstance(node, torch.Tensor):
        t = node.detach().cpu().contiguous()
        digest.update(f"{where}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(node, dict):
        digest.update(f"{where}|dict{len(node)}|".encode())
        for key in sorted(node, key=lambda k: (type(k).__name__, str(k))):
            _feed(digest, node[key], f"{where}/{type(key).__name__}:{key}")
    elif isinstance(node, (list, tuple)):
        digest.update(f"{where}|{type(node).__name__}{len(node)}|".encode())
        for i, item in enumerate(node):
            _feed(digest, item, f"{where}[{i}]")
    else:
        digest.update(f"{where}|{type(node).__name__}|{node!r}|".encode())


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 (hex) of a checkpoint's content: every tensor's dtype, shape and bytes and every
    other value, walked in a fixed order; :data:`CHECKSUM_KEY` itself is left out."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != CHECKSUM_KEY}, "")
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Save tensors, state dicts and plain Python values (no pickled objects) atomically, with
    the SHA-256 of the content under :data:`CHECKSUM_KEY` (checked by :func:`load_checkpoint`)."""
    payload = {**payload, CHECKSUM_KEY: payload_digest(payload)}
    with atomic_file(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
        _SAVES[0] += 1
        if os.environ.get("STROKESYNTH_KILL_AT_SAVE") == str(_SAVES[0]):
            os.kill(os.getpid(), signal.SIGKILL)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and verify its SHA-256; one-line errors for
    bad files. Checkpoints written before checksums were stored load unverified."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files
        raise DataError(path, f"not a readable strokesynth checkpoint ({type(exc).__name__})") from None
    if isinstance(payload, dict) and CHECKSUM_KEY in payload:
        if payload_digest(payload) != payload[CHECKSUM_KEY]:
            raise DataError(path, "checkpoint is corrupt: its content does not match the SHA-256 stored when it "
                                  "was saved (restore it from a copy or retrain)")
        payload = {k: v for k, v in payload.items() if k != CHECKSUM_KEY}
    return payload


def check_version(path: str | os.PathLike, saved: str | None, *, required: bool = True) -> None:
    """Refuse a model written by another toolkit version (major.minor differs) with one line.

    ``saved`` None: refused when ``required``, else accepted (checkpoints from before versions
    were recorded)."""
    if saved is None:
        if required:
            raise DataError(path, "records no strokesynth version (not written by this toolkit?)")
        return
    if str(saved).split(".")[:2] != __version__.split(".")[:2]:
        raise DataError(path, f"was written by strokesynth {saved}; this is {__version__} "
                              f"(retrain or re-export with this version, or install {saved})")


def load_system(path: str | os.PathLike, *, which: str = "networks"):
    """Rebuild the system a self-describing checkpoint (``best.pt``, ``last.pt``) was saved from.

    The checkpoint names its system (the registry finds the class) and holds its resolved
    config, so no other file is needed. Returns the system with the saved weights loaded.
    """
    from strokesynth.config import from_dict
    from strokesynth.engine.system import SYSTEMS

    ck = load_checkpoint(path)
    if "system" not in ck or which not in ck:
        raise DataError(path, "not a self-describing strokesynth checkpoint (no system name or weights)")
    check_version(path, ck.get("strokesynth_version"), required=False)
    cls = SYSTEMS.get(ck["system"])
    system = cls.restore(from_dict(cls.config_class, ck["config"], str(path)), ck.get("measured") or {})
    for name, state in ck[which].items():
        if name not in system.networks:
            raise DataError(path, f"holds weights of a network {name!r} that a {ck['system']} system does not have")
        try:
            system.networks[name].load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise DataError(path, f"the {name!r} weights do not fit the network its config describes ({first})") from None
    return system
