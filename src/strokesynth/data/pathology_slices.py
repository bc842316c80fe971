"""2D slices of one MR contrast with their lesion masks, prepared as in pseudo-healthy synthesis.

Xia, Chartsias & Tsaftaris: each volume is clipped at its 99.5th percentile and scaled to
[0, 1]; the middle N slices (60 in the paper) are kept; a slice is *pathological* if its lesion
mask has a voxel, *healthy* otherwise. Here, besides:

- slices are resampled in-plane to ``spacing_mm`` (when set), so a model trained on the
  phantom's pixels sees a real scan at the same pixel size, and centre-padded or cropped to
  ``size`` x ``size``; :meth:`PreparedVolume.to_case_grid` undoes both;
- negative intensities are clipped to 0 before scaling (MR magnitudes are non-negative).

:class:`SliceBank` holds the prepared slices of many cases (and which subject each came from);
:class:`FactorisationPairs` draws the training samples of the factorisation model and its
baselines: a pathological slice with its mask, a healthy slice, and a mask from *another*
subject (the unpaired model's mask prior), all from ``(seed, epoch, index)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from strokesynth.data.case import Case
from strokesynth.errors import ConfigError, DataError


@dataclass
class SliceConfig:
    """Which contrast and how its slices are prepared.

    Attributes:
        modality: the MR contrast (``flair`` as the paper; ``dwi`` or ``t1`` work the same).
        middle_slices: keep the middle N slices of each volume (60 in the paper; 0 = all).
        clip_percentile: per-volume clip and scale point (99.5).
        size: side of the square slices after centre padding/cropping (pixels; a multiple of
            16 for the networks).
        spacing_mm: in-plane pixel size slices are resampled to (0 = as stored). A trained
            model records it, so a new scan is brought to the training pixel size.
    """

    modality: str = "flair"
    middle_slices: int = 60
    clip_percentile: float = 99.5
    size: int = 128
    spacing_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 16:
            raise ConfigError("data.size", f"must be a multiple of 16 of at least 16, got {self.size}")
        if not 50.0 < self.clip_percentile <= 100.0:
            raise ConfigError("data.clip_percentile", f"must be in (50, 100], got {self.clip_percentile}")
        if self.middle_slices < 0 or self.spacing_mm < 0:
            raise ConfigError("data", "middle_slices and spacing_mm must not be negative")


def _same_grid(a, b) -> bool:
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=1e-3)


@dataclass
class PreparedVolume:
    """One case's prepared slices and how to put results back on its grid.

    Attributes:
        case: the case id; subject: its subject.
        images: ``(N, size, size)`` float32 in [0, 1].
        masks: ``(N, size, size)`` uint8 lesion masks, or ``None`` (no mask).
        z: the volume's slice index of each prepared slice.
        shape: the volume's (X, Y, Z); zoom: in-plane resampling factors; affine: the case's.
    """

    case: str
    subject: str
    images: np.ndarray
    masks: np.ndarray | None
    z: np.ndarray
    shape: tuple[int, int, int]
    zoom: tuple[float, float]
    affine: np.ndarray
    scale: float

    def to_case_grid(self, slices: np.ndarray) -> np.ndarray:
        """``(N, size, size)`` results -> ``(X, Y, Z)`` float32 on the case grid (0 off the kept slices)."""
        x, y, _ = self.shape
        zx, zy = self.zoom
        rx, ry = max(1, round(x * zx)), max(1, round(y * zy))
        out = np.zeros(self.shape, np.float32)
        for s, z in zip(slices, self.z, strict=True):
            plane = _pad_crop(np.asarray(s, np.float32), (rx, ry))
            if (rx, ry) != (x, y):
                plane = ndimage.zoom(plane, (x / rx, y / ry), order=1, grid_mode=True, mode="nearest")
            out[:, :, z] = plane[:x, :y]
        return out


def _pad_crop(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre-pad with zeros and/or centre-crop the first two axes of ``a`` to ``shape``."""
    out = np.zeros(shape + a.shape[2:], a.dtype)
    src, dst = [], []
    for n, m in zip(a.shape[:2], shape, strict=True):
        if n >= m:
            o = (n - m) // 2
            src.append(slice(o, o + m))
            dst.append(slice(0, m))
        else:
            o = (m - n) // 2
            src.append(slice(0, n))
            dst.append(slice(o, o + n))
    out[dst[0], dst[1]] = a[src[0], src[1]]
    return out


def prepare_volume(case: Case, cfg: SliceConfig, *, label: str = "lesion", need_mask: bool = True,
                   all_slices: bool = False) -> PreparedVolume:
    """The prepared slices of ``case`` (see the module docstring).

    Args:
        need_mask: the case must have a binary lesion mask on the image's grid.
        all_slices: keep every slice (inference) instead of the middle ``cfg.middle_slices``.

    Raises:
        DataError: missing contrast or mask, a 4D image, a mask on another grid or not binary.
    """
    where = case.where or case.id
    if cfg.modality not in case:
        raise DataError(where, f"no {cfg.modality} image (this model works on {cfg.modality})")
    vol = case[cfg.modality]
    if vol.array.ndim != 3:
        raise DataError(vol.path or where, f"{cfg.modality} is {vol.array.ndim}D; a 3D image is needed")
    mask_vol = case.modalities.get(label)
    if need_mask and mask_vol is None:
        raise DataError(where, f"no lesion mask ({label}); pseudo-healthy training needs one per case")
    if mask_vol is not None and not _same_grid(vol, mask_vol):
        raise DataError(vol.path or where, f"{cfg.modality} {vol.shape[:3]} is on a different grid from the lesion "
                                           f"mask {mask_vol.shape[:3]}; resample one onto the other first")
    img = np.asarray(vol.array, np.float32)
    mask = None
    if mask_vol is not None:
        m = np.asarray(mask_vol.array)
        bad = np.setdiff1d(np.unique(m), [0, 1])
        if bad.size:
            raise DataError(mask_vol.path or where, f"lesion mask is not binary (values {bad[:5].tolist()} besides 0/1)")
        mask = m.astype(np.uint8)
    img = np.clip(img, 0.0, None)
    scale = float(np.percentile(img, cfg.clip_percentile))
    if not scale > 0:
        raise DataError(vol.path or where, f"{cfg.modality} is empty (its {cfg.clip_percentile}th percentile is 0)")
    img = np.clip(img / scale, 0.0, 1.0)
    nz = img.shape[2]
    keep = nz if all_slices or cfg.middle_slices == 0 else min(nz, cfg.middle_slices)
    z = np.arange((nz - keep) // 2, (nz - keep) // 2 + keep)
    sx, sy = vol.spacing[:2]
    zoom = (sx / cfg.spacing_mm, sy / cfg.spacing_mm) if cfg.spacing_mm > 0 else (1.0, 1.0)
    size = (cfg.size, cfg.size)

    def plane(a: np.ndarray, order: int) -> np.ndarray:
        if zoom != (1.0, 1.0):
            a = ndimage.zoom(a, zoom, order=order, grid_mode=True, mode="nearest")
        return _pad_crop(a, size)

    images = np.stack([plane(img[:, :, k], 1) for k in z]).astype(np.float32)
    masks = None
    if mask is not None:
        masks = np.stack([plane(mask[:, :, k].astype(np.float32), 1) >= 0.5 for k in z]).astype(np.uint8)
    return PreparedVolume(case.id, case.subject, np.clip(images, 0, 1), masks, z, tuple(img.shape),  # type: ignore[arg-type]
                          zoom, np.asarray(vol.affine), scale)


@dataclass
class SliceBank:
    """Prepared slices of many cases, flattened: ``images``/``masks`` ``(N, 1, S, S)`` float32,
    with each slice's ``case``, ``subject`` and ``z``; ``lesion`` flags pathological slices."""

    images: np.ndarray
    masks: np.ndarray
    case: np.ndarray
    subject: np.ndarray
    z: np.ndarray

    @classmethod
    def from_volumes(cls, volumes: list[PreparedVolume]) -> SliceBank:
        if not volumes:
            raise ValueError("no volumes")
        imgs = np.concatenate([v.images for v in volumes])[:, None]
        masks = np.concatenate([v.masks if v.masks is not None else np.zeros_like(v.images, np.uint8)
                                for v in volumes])[:, None].astype(np.float32)
        case = np.concatenate([[v.case] * len(v.z) for v in volumes])
        subject = np.concatenate([[v.subject] * len(v.z) for v in volumes])
        return cls(imgs.astype(np.float32), masks, case, subject, np.concatenate([v.z for v in volumes]))

    @property
    def lesion(self) -> np.ndarray:
        return self.masks.reshape(len(self.masks), -1).any(1)

    def subset(self, keep: np.ndarray) -> SliceBank:
        return SliceBank(self.images[keep], self.masks[keep], self.case[keep], self.subject[keep], self.z[keep])

    def __len__(self) -> int:
        return len(self.images)

    def save(self, path) -> None:
        """Write the bank to ``path`` (``.npz``; images as float16) atomically."""
        from pathlib import Path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
        np.savez_compressed(tmp, images=self.images.astype(np.float16), masks=self.masks.astype(np.uint8),
                            case=self.case, subject=self.subject, z=self.z)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> SliceBank:
        d = np.load(path)
        return cls(d["images"].astype(np.float32), d["masks"].astype(np.float32), d["case"], d["subject"], d["z"])


def check_bank(bank: SliceBank, where: str, *, need_healthy: bool = True) -> None:
    """Raise :class:`DataError` when ``bank`` has no pathological (or, if needed, no healthy) slice."""
    n_les = int(bank.lesion.sum())
    if n_les == 0:
        raise DataError(where, "no pathological slice (no lesion voxel) in the chosen slices")
    if need_healthy and n_les == len(bank):
        raise DataError(where, "no healthy slice (every chosen slice has a lesion); add lesion-free scans or slices")


class FactorisationPairs(Dataset):
    """Training samples: ``x_p``, ``m_p`` (a pathological slice and its mask), ``x_h`` (a healthy
    slice) and ``m_o`` (a mask of another subject), each ``(1, S, S)``; plus random left-right
    flips. One sample per pathological slice per epoch; draws follow ``(seed, epoch, index)``.
    """

    def __init__(self, bank: SliceBank, seed: int = 0, *, flip: bool = True) -> None:
        les = bank.lesion
        self.bank, self.seed, self.flip = bank, int(seed), flip
        self.pathological = np.flatnonzero(les)
        self.healthy = np.flatnonzero(~les)
        if not self.pathological.size or not self.healthy.size:
            raise ValueError("FactorisationPairs needs pathological and healthy slices")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pathological)

    def _get(self, i: int, flip: bool, key: str) -> torch.Tensor:
        a = getattr(self.bank, key)[i]
        return torch.from_numpy(np.ascontiguousarray(a[:, ::-1] if flip else a))

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(item), 104729])
        p = int(self.pathological[item])
        h = int(rng.choice(self.healthy))
        others = self.pathological[self.bank.subject[self.pathological] != self.bank.subject[p]]
        o = int(rng.choice(others if others.size else self.pathological))
        f = rng.random(3) < 0.5 if self.flip else np.zeros(3, bool)
        return {"x_p": self._get(p, f[0], "images"), "m_p": self._get(p, f[0], "masks"),
                "x_h": self._get(h, f[1], "images"), "m_o": self._get(o, f[2], "masks")}


class SegmentationSlices(Dataset):
    """Every slice of a bank with its mask (``image``, ``label`` ``(1, S, S)``), for the segmentor
    f_pre; random left-right flips from ``(seed, epoch, index)``."""

    def __init__(self, bank: SliceBank, seed: int = 0, *, flip: bool = True) -> None:
        self.bank, self.seed, self.flip, self.epoch = bank, int(seed), flip, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def lesion_flags(self) -> np.ndarray:
        return self.bank.lesion

    def __len__(self) -> int:
        return len(self.bank)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        f = self.flip and np.random.default_rng([self.seed, self.epoch, int(item), 7]).random() < 0.5
        img, m = self.bank.images[item], self.bank.masks[item]
        if f:
            img, m = img[:, ::-1], m[:, ::-1]
        return {"image": torch.from_numpy(np.ascontiguousarray(img)), "label": torch.from_numpy(np.ascontiguousarray(m))}
