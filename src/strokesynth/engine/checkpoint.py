"""Checkpoints that load with ``torch.load(..., weights_only=True)``, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from strokesynth.errors import DataError
from strokesynth.io.atomic import atomic_file


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Save tensors, state dicts and plain Python values (no pickled objects) atomically."""
    with atomic_file(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); one-line errors for bad files."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files
        raise DataError(path, f"not a readable strokesynth checkpoint ({type(exc).__name__})") from None
