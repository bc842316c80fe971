"""Rigid head motion of a phantom CTP: a trajectory per frame and its application to the frames.

The scanner is fixed and the head moves: frame ``t`` images the head moved by
``T_t(p) = R_t (p - c) + c + s_t``, i.e. the anatomy at scanner point ``p`` is the still head's at
``T_t^-1(p)``. Each distinct pose is imaged afresh from the anatomy (:class:`MovedWarp`, so edges
stay sharp, as a scanner sees them); the scanner's noise is added after.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from strokesynth.phantom.anatomy import _rotation
from strokesynth.phantom.config import MotionConfig


def draw_trajectory(cfg: MotionConfig, frames: int, rng: np.random.Generator) -> dict[str, Any] | None:
    """Per-frame rotations (deg, about x, y, z) and translations (mm), ``(T, 3)`` each, about
    ``centre`` (the scanner's isocentre, mm), or None for a still scan. Frame 0 is always at rest; a drift moves
    in ``cfg.drift_steps`` equal steps (each step is a pose imaged afresh)."""
    if rng.uniform() >= cfg.prob:
        return None
    kind = str(cfg.kinds[int(rng.integers(len(cfg.kinds)))])
    sign = rng.choice([-1.0, 1.0], size=6)
    peak_rot = float(rng.uniform(*cfg.rotate_deg)) * np.array([cfg.tilt_share, cfg.tilt_share, 1.0]) * sign[:3]
    peak_shift = float(rng.uniform(*cfg.translate_mm)) * np.array([1.0, 1.0, cfg.through_plane_share]) * sign[3:]
    t = np.floor(np.arange(frames) / max(frames - 1, 1) * cfg.drift_steps) / cfg.drift_steps  # stepped drift
    profile = np.zeros(frames)
    if kind in ("drift", "both"):
        profile += t * (0.5 if kind == "both" else 1.0)
    if kind in ("sudden", "both"):
        at = int(rng.integers(max(frames // 5, 1), max(4 * frames // 5, 2)))
        profile[at:] += 0.5 if kind == "both" else 1.0
    return {"kind": kind, "rotation_deg": profile[:, None] * peak_rot[None],
            "translation_mm": profile[:, None] * peak_shift[None], "centre": np.zeros(3)}


class MovedWarp:
    """A subject's scanner -> MNI warp with the head moved by the rigid ``pose`` (4x4, scanner mm):
    the anatomy seen at scanner point ``p`` is the still head's at ``pose^-1 p``."""

    def __init__(self, warp, pose: np.ndarray) -> None:
        self.warp, self.inverse = warp, np.linalg.inv(pose)
        self.scale, self.skull_mm = warp.scale, warp.skull_mm

    def to_mni(self, points: np.ndarray) -> np.ndarray:
        return self.warp.to_mni(points @ self.inverse[:3, :3].T + self.inverse[:3, 3])


def pose_matrix(rotation_deg: np.ndarray, translation_mm: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The rigid move ``p -> R (p - centre) + centre + translation`` as a 4x4 matrix (mm)."""
    rot = _rotation(rotation_deg)
    move = np.eye(4)
    move[:3, :3] = rot
    move[:3, 3] = centre - rot @ centre + translation_mm
    return move


def pose_frames(trajectory: dict[str, Any]) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """The distinct head positions of ``trajectory`` and the frames imaged in each: ``(pose, frames)``
    with ``pose`` None for the rest position."""
    rot, shift = trajectory["rotation_deg"], trajectory["translation_mm"]
    key = np.round(np.concatenate([rot, shift], axis=1), 6)
    out = []
    for row in np.unique(key, axis=0):
        frames = np.flatnonzero((key == row).all(axis=1))
        still = not np.any(row)
        out.append((None if still else pose_matrix(row[:3], row[3:], trajectory["centre"]), frames))
    return out


def describe(trajectory: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-ready summary: kind, peak rotation and translation, and the per-frame values."""
    if trajectory is None:
        return None
    rot, shift = trajectory["rotation_deg"], trajectory["translation_mm"]
    return {"kind": trajectory["kind"], "max_rotation_deg": round(float(np.abs(rot).max()), 2),
            "max_translation_mm": round(float(np.linalg.norm(shift, axis=1).max()), 2),
            "rotation_deg": np.round(rot, 3).tolist(), "translation_mm": np.round(shift, 3).tolist()}


__all__ = ["MovedWarp", "describe", "draw_trajectory", "pose_frames", "pose_matrix"]
