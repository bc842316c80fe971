"""A small geometric toy cohort in the ISLES 2018 shape, for demos and tests of the data layer.

This is *not* the digital stroke phantom (which models anatomy and perfusion physics); it is
a quick, deterministic stand-in with the right structure: per case a non-contrast CT, a 4D
CTP series, CBF/CBV/MTT/Tmax maps, a DWI and a core mask, on an axial slab of a few 5 mm
slices, with some subjects scanned as two slabs. Values are in the right units and ranges
(HU, ml/100 g/min, ml/100 g, s) so normalisation and checks behave as on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume


@dataclass
class ToyConfig:
    """Size of the toy cohort.

    Attributes:
        subjects: number of subjects.
        size: in-plane matrix (size x size).
        slices: (min, max) slices per slab.
        frames: frames of the 4D CTP.
        dt: seconds between CTP frames.
        second_slab_fraction: fraction of subjects scanned with two slabs.
        healthy_fraction: fraction of scans without a lesion.
        seed: the one seed of every draw.
    """

    subjects: int = 4
    size: int = 64
    slices: tuple[int, int] = (2, 8)
    frames: int = 16
    dt: float = 2.0
    second_slab_fraction: float = 0.5
    healthy_fraction: float = 0.0
    seed: int = 0


def _affine(size: int, rng: np.random.Generator) -> np.ndarray:
    pixel = 230.0 / size
    angle = np.deg2rad(rng.uniform(-5, 5))
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([pixel, pixel, 5.0])
    aff[:3, 3] = [-115.0, -115.0, rng.uniform(-10, 30)]
    return aff.astype(np.float32).astype(np.float64)  # representable in NIfTI's float32


def toy_case(case_id: str, subject: str, n_slices: int, cfg: ToyConfig, rng: np.random.Generator, lesion: bool) -> Case:
    """Build one in-memory toy case (see module docstring)."""
    n = cfg.size
    x, y, z = np.meshgrid(
        np.linspace(-1, 1, n), np.linspace(-1, 1, n), np.linspace(-1, 1, n_slices), indexing="ij"
    )
    ax, ay = rng.uniform(0.75, 0.9), rng.uniform(0.8, 0.95)
    r = np.sqrt((x / ax) ** 2 + (y / ay) ** 2)
    brain = r < 1.0
    gm = brain & (r > 0.75)
    vent = (np.abs(x) < 0.12) & (np.abs(y) < 0.3)
    core = np.zeros_like(brain)
    penumbra = np.zeros_like(brain)
    if lesion:
        side = rng.choice([-1.0, 1.0])
        cx, cy = side * rng.uniform(0.3, 0.5), rng.uniform(-0.4, 0.4)
        rc = rng.uniform(0.12, 0.3)
        d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + 0.3 * z**2)
        wobble = 1 + 0.25 * np.sin(5 * np.arctan2(y - cy, x - cx) + rng.uniform(0, 6))
        core = brain & ~vent & (d < rc * wobble)
        penumbra = brain & ~vent & ~core & (d < 2.0 * rc * wobble)
    cbf = np.where(gm, 55.0, 22.0) * brain
    cbv = np.where(gm, 4.0, 2.0) * brain
    cbf = np.where(penumbra, cbf * 0.6, cbf)
    cbf = np.where(core, cbf * 0.2, cbf)
    cbv = np.where(core, cbv * 0.4, cbv)
    cbf = np.where(vent, 0.0, cbf)
    cbv = np.where(vent, 0.0, cbv)
    mtt = np.divide(cbv * 60.0, cbf, out=np.zeros_like(cbf), where=cbf > 0)
    tmax = np.where(brain & ~vent, 1.0 + 4.0 * penumbra + 8.0 * core, 0.0)
    noise = rng.normal(size=(n, n, n_slices))
    cbf = np.clip(cbf * (1 + 0.05 * noise), 0, None)
    ct = np.where(brain, np.where(gm, 38.0, 28.0), -1000.0 * (r > 1.08)) + 3 * noise
    ct = np.where(vent, 8.0, ct) - 6.0 * core
    ct = np.round(ct)
    t = np.arange(cfg.frames) * cfg.dt
    delay = 2.0 + 3.0 * penumbra + 4.0 * core
    tt = np.clip(t[None, None, None, :] - 8.0 - delay[..., None], 0, None)
    bolus = (tt**3) * np.exp(-tt / 1.5)
    bolus = bolus / max(bolus.max(), 1e-6)
    ctp = ct[..., None] + 40.0 * cbv[..., None] / 4.0 * bolus + 2 * rng.normal(size=ct.shape + (cfg.frames,))
    ctp = np.round(ctp)
    dwi = np.where(brain, np.where(gm, 300.0, 260.0), 5.0) * (1 + 1.5 * core) + 8 * np.abs(noise)
    aff = _affine(n, rng)
    vols = {
        "ct": Volume(ct, aff, disk_dtype=np.int16),
        "ctp": Volume(ctp, aff, dt=cfg.dt, disk_dtype=np.int16),
        "cbf": Volume(cbf, aff),
        "cbv": Volume(cbv, aff),
        "mtt": Volume(mtt, aff),
        "tmax": Volume(tmax, aff),
        "dwi": Volume(dwi, aff),
        "lesion": Volume(core.astype(np.uint8), aff, kind="label"),
    }
    return Case(case_id, subject, vols, meta={"source": "toy"})


def toy_cohort(cfg: ToyConfig | None = None) -> list[Case]:
    """Build the toy cohort in memory; the same config (seed included) gives identical arrays."""
    cfg = cfg or ToyConfig()
    rng = np.random.default_rng(cfg.seed)
    cases = []
    number = 1
    for s in range(cfg.subjects):
        subject = f"toy{s + 1:03d}"
        slabs = 2 if rng.random() < cfg.second_slab_fraction else 1
        for _ in range(slabs):
            n_slices = int(rng.integers(cfg.slices[0], cfg.slices[1] + 1))
            lesion = rng.random() >= cfg.healthy_fraction
            cases.append(toy_case(f"case_{number}", subject, n_slices, cfg, rng, lesion))
            number += 1
    return cases
