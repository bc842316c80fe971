"""Spatial augmentation applied identically to images and labels, as the seed papers use it.

Rotation in [-10, 10] degrees, translation in [-10, 10] % of the size, isotropic scaling in
[0.9, 1.1] and flips, each applied with probability ``p`` and **in a random order**. The drawn
operations are composed into one matrix and applied with a single resampling (bilinear for
images, nearest for labels), which is faster and blurs less than resampling once per
operation. Everything works in the (x, y) plane: a 3D (C, X, Y, Z) volume gets the same
in-plane transform on every slice, as slabs of 5 mm slices call for.

Every draw comes from a ``numpy.random.Generator`` the caller passes, and the drawn parameters
are returned, so an augmented sample can be reproduced and inspected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from strokesynth.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities of the spatial augmentation.

    Attributes:
        rotate_deg: maximum absolute in-plane rotation, degrees.
        translate_frac: maximum absolute shift as a fraction of the in-plane size.
        scale: (min, max) isotropic in-plane zoom factor.
        flip_axes: array axes (0 = x, 1 = y) that may be flipped.
        p: probability of applying each operation.
        random_order: shuffle the order of the operations per sample.
    """

    rotate_deg: float = 10.0
    translate_frac: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    flip_axes: tuple[int, ...] = (0,)
    p: float = 0.5
    random_order: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ConfigError("augment.p", f"must be within [0, 1], got {self.p}")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError("augment.scale", f"must be (min, max) with 0 < min <= max, got {self.scale}")
        if any(a not in (0, 1) for a in self.flip_axes):
            raise ConfigError("augment.flip_axes", "only the in-plane axes 0 (x) and 1 (y) can be flipped")


OPERATIONS = ("rotate", "translate", "scale", "flip")


def draw_params(cfg: AugmentConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Draw one sample's operations: a dict with ``order`` and each applied op's parameter."""
    order = list(OPERATIONS)
    if cfg.random_order:
        order = [order[i] for i in rng.permutation(len(order))]
    params: dict[str, Any] = {"order": []}
    for op in order:
        if rng.random() >= cfg.p:
            continue
        if op == "rotate" and cfg.rotate_deg > 0:
            params["rotate"] = float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
        elif op == "translate" and cfg.translate_frac > 0:
            params["translate"] = [float(v) for v in rng.uniform(-cfg.translate_frac, cfg.translate_frac, 2)]
        elif op == "scale" and cfg.scale[0] != cfg.scale[1]:
            params["scale"] = float(rng.uniform(*cfg.scale))
        elif op == "flip" and cfg.flip_axes:
            params["flip"] = [int(a) for a in cfg.flip_axes if rng.random() < 0.5]
            if not params["flip"]:
                del params["flip"]
                continue
        else:
            continue
        params["order"].append(op)
    return params


def in_plane_matrix(params: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """The 3x3 forward transform (input -> output point) in centred pixel units of axes (0, 1).

    Operations compose in ``params["order"]``: the first one drawn acts first.
    """
    m = np.eye(3)
    for op in params.get("order", []):
        step = np.eye(3)
        if op == "rotate":
            a = math.radians(params["rotate"])
            step[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
        elif op == "translate":
            step[0, 2] = params["translate"][0] * size[0]
            step[1, 2] = params["translate"][1] * size[1]
        elif op == "scale":
            step[0, 0] = step[1, 1] = params["scale"]
        elif op == "flip":
            for axis in params["flip"]:
                step[axis, axis] = -1.0
        m = step @ m
    return m


def _theta(forward: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """affine_grid's theta (output -> input, normalised, grid axis order) for array ``shape``."""
    nd = len(shape)
    full = np.eye(nd + 1)
    full[:2, :2] = forward[:2, :2]
    full[:2, nd] = forward[:2, 2]
    inv = np.linalg.inv(full)
    s = np.diag([n / 2.0 for n in shape] + [1.0])
    norm = np.linalg.inv(s) @ inv @ s  # align_corners=False: p = norm * n / 2
    perm = np.eye(nd + 1)
    perm[:nd, :nd] = np.eye(nd)[::-1]  # grid coordinates run over the axes in reverse order
    grid = perm @ norm @ perm
    return torch.as_tensor(grid[:nd], dtype=torch.float32)


def apply_params(
    image: torch.Tensor, label: torch.Tensor | None, params: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply drawn params to ``image`` (C, X, Y[, Z]) float and ``label`` (L, X, Y[, Z]) integer.

    Outside the field of view images are filled with 0 (the normalised background) and labels
    with 0.
    """
    if not params.get("order"):
        return image, label
    spatial = tuple(image.shape[1:])
    theta = _theta(in_plane_matrix(params, spatial[:2]), spatial)[None]
    grid = F.affine_grid(theta, [1, 1, *spatial], align_corners=False)
    out = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    out_label = None
    if label is not None:
        lab = F.grid_sample(label[None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        out_label = lab.round().to(label.dtype)
    return out, out_label


class SpatialAugment:
    """Callable augmentation: ``(image, label, rng) -> (image, label, params)``."""

    def __init__(self, cfg: AugmentConfig | None = None):
        self.cfg = cfg or AugmentConfig()

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor | None, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        params = draw_params(self.cfg, rng)
        image, label = apply_params(image, label, params)
        return image, label, params
