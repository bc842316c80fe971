"""A subject's anatomy: a random smooth warp of the MNI atlas, sampled on a scan grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strokesynth.phantom.atlas import CHANNELS, Atlas
from strokesynth.phantom.config import AnatomyConfig
from strokesynth.phantom.fields import RandomField, sample_grid

VENTRICLE_CENTER = np.array([0.0, -10.0, 12.0])  #: MNI mm
VENTRICLE_SIGMA = 25.0  #: mm, reach of the ventricle enlargement


def _rotation(deg: np.ndarray) -> np.ndarray:
    ax, ay, az = np.radians(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class SubjectWarp:
    """Scanner mm -> MNI mm for one subject: affine (head size, pose), elastic field, ventricles.

    ``mni = V(R (p - t) / scale + u(p))`` with ``V`` a radial stretch about the ventricles that
    pulls sample points towards them (so the ventricles look larger by up to 1 / (1 - a)).
    """

    scale: float
    rotation: np.ndarray  #: (3, 3)
    translation: np.ndarray  #: (3,) mm
    elastic: RandomField  #: 3 channels, unit SD
    elastic_mm: float
    ventricle: float  #: a in [0, 1)
    skull_mm: float

    @classmethod
    def draw(cls, cfg: AnatomyConfig, rng: np.random.Generator) -> SubjectWarp:
        rot = _rotation(rng.uniform(-1, 1, 3) * np.asarray(cfg.rotate_deg))
        trans = np.array([*rng.uniform(-1, 1, 2) * cfg.translate_mm, 0.0])
        return cls(
            scale=float(rng.uniform(*cfg.head_scale)),
            rotation=rot,
            translation=trans,
            elastic=RandomField(rng, 3, cfg.elastic_smooth_mm),
            elastic_mm=cfg.elastic_mm,
            ventricle=float(rng.uniform(*cfg.ventricle_enlarge)),
            skull_mm=float(rng.uniform(*cfg.skull_mm)),
        )

    def to_mni(self, points: np.ndarray) -> np.ndarray:
        """MNI mm of scanner points ``(N, 3)`` mm."""
        q = (points - self.translation) @ self.rotation / self.scale
        q = q + self.elastic(points).T * self.elastic_mm
        d = q - VENTRICLE_CENTER
        r2 = (d**2).sum(axis=1, keepdims=True)
        return VENTRICLE_CENTER + d * (1 - self.ventricle * np.exp(-r2 / (2 * VENTRICLE_SIGMA**2)))

    def mni_z_of(self, scanner_z: float) -> float:
        """MNI z of the scanner point (0, 0, z) (ignoring the elastic part)."""
        return float(((np.array([0.0, 0.0, scanner_z]) - self.translation) @ self.rotation / self.scale)[2])

    def scanner_z_for(self, mni_z: float) -> float:
        """Scanner z whose centre point maps to MNI z ``mni_z`` (affine part, by bisection)."""
        lo, hi = -300.0, 300.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.mni_z_of(mid) < mni_z:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)


@dataclass
class Tissue:
    """Tissue fractions of each voxel of a scan grid, ``(X, Y, Z)`` float32 each, in [0, 1].

    ``mni`` holds the MNI mm of the voxel centres ``(X, Y, Z, 3)``.
    """

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    ventricle: np.ndarray
    skull: np.ndarray
    scalp: np.ndarray
    artery: np.ndarray
    vein: np.ndarray
    artery_id: np.ndarray  #: uint8, see :class:`~strokesynth.phantom.atlas.Atlas`
    mni: np.ndarray

    @property
    def parenchyma(self) -> np.ndarray:
        return self.gm + self.wm

    @property
    def air(self) -> np.ndarray:
        return np.clip(1 - self.gm - self.wm - self.csf - self.skull - self.scalp - self.artery - self.vein, 0, 1)


def sample_tissue(atlas: Atlas, warp: SubjectWarp, affine: np.ndarray, shape: tuple[int, int, int],
                  sub_slices: int) -> Tissue:
    """Tissue fractions on the grid ``shape`` with voxel->mm ``affine``.

    Each voxel averages ``sub_slices`` samples spread across its slice thickness (partial
    volume of thick slices); skull and scalp are shells at subject-specific distances outside
    the brain.
    """
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), -1)
    offsets = (np.arange(sub_slices) + 0.5) / sub_slices - 0.5
    acc = np.zeros((len(CHANNELS) + 2, *shape), np.float32)
    centre = None
    for off in offsets:
        pts = (ijk + np.array([0, 0, off])).reshape(-1, 3) @ affine[:3, :3].T + affine[:3, 3]
        mni = warp.to_mni(pts)
        if centre is None or off == offsets[len(offsets) // 2]:
            centre = mni
        ch = sample_grid(atlas.data, atlas.affine, mni)
        outside = ch[CHANNELS.index("outside_mm")] * warp.scale  # subject mm outside the brain
        skull = np.clip(outside - 1.5, 0, 1) * np.clip(1.5 + warp.skull_mm - outside, 0, 1)
        scalp = np.clip(outside - 1.5 - warp.skull_mm, 0, 1) * np.clip(7.0 + warp.skull_mm - outside, 0, 1)
        ch[CHANNELS.index("outside_mm")] = 0
        acc[: len(CHANNELS)] += ch.reshape(len(CHANNELS), *shape)
        acc[len(CHANNELS)] += skull.reshape(shape)
        acc[len(CHANNELS) + 1] += scalp.reshape(shape)
    acc /= sub_slices
    ids = sample_grid(atlas.artery_id[None].astype(np.float32), atlas.affine, centre, nearest=True)
    c = {name: acc[i] for i, name in enumerate(CHANNELS)}
    vessel = np.clip(c["artery"] + c["vein"], 0, 1)
    keep = 1 - vessel  # vessels displace whatever else was there
    return Tissue(
        gm=c["gm"] * keep, wm=c["wm"] * keep, csf=c["csf"] * keep,
        ventricle=np.minimum(c["ventricle"], c["csf"]) * keep,
        skull=acc[len(CHANNELS)] * keep, scalp=acc[len(CHANNELS) + 1] * keep,
        artery=c["artery"], vein=np.clip(c["vein"], 0, 1 - c["artery"]),
        artery_id=ids[0].reshape(shape).astype(np.uint8),
        mni=centre.reshape(*shape, 3).astype(np.float32),
    )
