"""Vascular territories and the stroke: hypoperfused region, irregular core, satellites.

Territories are approximated from MNI coordinates (per hemisphere by the sign of x):
PCA = occipital lobe, inferior temporal lobe and thalamus; ACA = a medial strip of the
frontal and parietal lobes widening upwards; MCA = the rest (lateral hemisphere and basal
ganglia). Boundaries are jittered per subject by a smooth random field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from strokesynth.phantom.atlas import TERRITORIES
from strokesynth.phantom.config import StrokeConfig
from strokesynth.phantom.fields import RandomField


def territory_of(mni: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
    """Territory index (0 MCA, 1 ACA, 2 PCA) of MNI points ``(N, 3)``; ``jitter`` ``(2, N)`` mm."""
    x, y, z = np.abs(mni[:, 0]), mni[:, 1].copy(), mni[:, 2]
    if jitter is not None:
        x = x + jitter[0]
        y = y + jitter[1]
    pca = (y < -68 + 0.25 * np.clip(z - 10, 0, None)) | ((z < -8) & (y < -25)) | (
        (x < 20) & (y > -36) & (y < -12) & (z > -6) & (z < 16))
    aca = ~pca & (x < np.clip(10 + 0.3 * z, 10, 26)) & (y > -62) & (z > -6) & (y > -30 - 0.5 * z)
    out = np.zeros(len(mni), np.uint8)
    out[aca] = 1
    out[pca] = 2
    return out


def side_of(mni: np.ndarray) -> np.ndarray:
    """0 for the right hemisphere (x >= 0), 1 for the left."""
    return (mni[:, 0] < 0).astype(np.uint8)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass
class Stroke:
    """One subject's occlusion (all positions in MNI mm; ``None`` fields for a healthy subject)."""

    territory: int
    side: int
    seed: np.ndarray
    core_radius: float  #: 0 for a subject without a core
    hypo_radius: float
    rcbf_core: float
    rcbf_penumbra: float
    rcbv_core: float
    rcbv_penumbra: float
    delay: float
    collateral: float
    satellites: list[tuple[np.ndarray, float]] = field(default_factory=list)
    noise: RandomField | None = None
    irregularity: float = 0.35

    @property
    def territory_name(self) -> str:
        return TERRITORIES[self.territory]

    @classmethod
    def draw(cls, cfg: StrokeConfig, rng: np.random.Generator, tissue_points: np.ndarray,
             z_range: tuple[float, float], jitter: RandomField, position: float | None = None) -> Stroke:
        """Draw an occlusion whose seed lies in tissue within MNI ``z_range``.

        ``position``: the subject's point on its cohort's sequence
        (:func:`strokesynth.phantom.lesion_size.group_position`); below ``cfg.no_core_prob`` the
        stroke has no core. Without it that chance is drawn from ``rng`` (one number either way).
        """
        names = list(cfg.territory_weights)
        w = np.array([cfg.territory_weights[n] for n in names], float)
        terr = TERRITORIES.index(names[rng.choice(len(names), p=w / w.sum())])
        side = int(rng.integers(2))
        cand = tissue_points[(tissue_points[:, 2] >= z_range[0]) & (tissue_points[:, 2] <= z_range[1])]
        cand = cand[(side_of(cand) == side)]
        pick = cand[rng.choice(len(cand), size=min(4000, len(cand)), replace=False)]
        match = pick[territory_of(pick, jitter(pick) * 4.0) == terr]
        if len(match) == 0:  # territory absent from this slab: fall back to MCA
            terr = 0
            match = pick[territory_of(pick, jitter(pick) * 4.0) == 0]
        seed = match[rng.integers(len(match))]
        core = float(np.exp(rng.uniform(*np.log(cfg.core_radius_mm))))
        hypo = core * float(rng.uniform(*cfg.hypo_ratio))
        u = rng.uniform()
        if (u if position is None else position) < cfg.no_core_prob:
            core = 0.0
        sats = []
        if core > 0 and rng.uniform() < cfg.satellite_prob:
            for _ in range(int(rng.integers(cfg.satellites[0], cfg.satellites[1] + 1))):
                direction = rng.standard_normal(3)
                direction /= np.linalg.norm(direction)
                where = seed + direction * rng.uniform(1.1 * core + 5, max(hypo, 1.1 * core + 10))
                sats.append((where, float(rng.uniform(*cfg.satellite_radius_mm))))
        return cls(
            territory=terr, side=side, seed=seed, core_radius=core, hypo_radius=hypo,
            rcbf_core=float(rng.uniform(*cfg.rcbf_core)), rcbf_penumbra=float(rng.uniform(*cfg.rcbf_penumbra)),
            rcbv_core=float(rng.uniform(*cfg.rcbv_core)), rcbv_penumbra=float(rng.uniform(*cfg.rcbv_penumbra)),
            delay=float(rng.uniform(*cfg.delay_s)), collateral=float(rng.uniform(*cfg.collateral_fill)),
            satellites=sats, noise=RandomField(rng, 2, 8.0), irregularity=cfg.irregularity,
        )

    def fields(self, mni: np.ndarray, territory: np.ndarray) -> dict[str, np.ndarray]:
        """Relative CBF and CBV, extra delay (s), and hypoperfusion/core memberships at ``mni`` (N, 3).

        ``territory`` holds each point's territory index; only points of the occluded
        territory on the occluded side are affected.
        """
        inside = ((territory == self.territory) & (side_of(mni) == self.side)).astype(np.float32)
        n = self.noise(mni) if self.noise is not None else np.zeros((2, len(mni)), np.float32)
        d = np.linalg.norm(mni - self.seed, axis=1)
        hypo = inside * _sigmoid((self.hypo_radius * (1 + self.irregularity * n[1]) - d) / 3.0)
        core = np.zeros(len(mni), np.float32)
        if self.core_radius > 0:
            core = _sigmoid((self.core_radius * (1 + self.irregularity * n[0]) - d) / 1.5)
            for where, radius in self.satellites:
                core = np.maximum(core, _sigmoid((radius - np.linalg.norm(mni - where, axis=1)) / 1.0))
            core = core * inside
        hypo = np.maximum(hypo, core)
        rcbf_h = 1 - (1 - self.rcbf_penumbra) * hypo
        rcbv_h = 1 + (self.rcbv_penumbra - 1) * hypo
        return {
            "rcbf": (1 - core) * rcbf_h + core * self.rcbf_core,
            "rcbv": (1 - core) * rcbv_h + core * self.rcbv_core,
            "delay": self.delay * hypo,
            "hypo": hypo,
            "core": core,
        }

    def describe(self) -> dict:
        """JSON-ready summary."""
        return {
            "territory": self.territory_name, "side": "right" if self.side == 0 else "left",
            "seed_mni_mm": [round(float(v), 1) for v in self.seed],
            "core_radius_mm": round(self.core_radius, 1), "hypo_radius_mm": round(self.hypo_radius, 1),
            "rcbf_core": round(self.rcbf_core, 3), "rcbf_penumbra": round(self.rcbf_penumbra, 3),
            "rcbv_core": round(self.rcbv_core, 3), "rcbv_penumbra": round(self.rcbv_penumbra, 3),
            "delay_s": round(self.delay, 2), "satellites": len(self.satellites),
        }
