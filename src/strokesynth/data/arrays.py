"""Preprocessed case arrays: normalised channels stacked, with a memory or on-disk cache.

:func:`case_arrays` turns a case into a (C, X, Y, Z) float32 channel stack (each modality
normalised per volume; a 4D series contributes its T frames as T channels) and an (X, Y, Z)
label. :class:`ArrayStore` serves these arrays to the datasets:

- without a cache folder it keeps the last few cases in memory (an LRU), enough for
  evaluation or for small cohorts;
- with a cache folder it preprocesses each case once into ``.npy`` files (as nnU-Net does)
  and memory-maps them, so a cohort of hundreds of ISLES-sized cases trains in a few GB of RAM.
  Cache entries are keyed by the source files (path, size, mtime), the modalities, the
  normalisation and the in-plane fit, so a changed input or setting is never served stale.

Given ``fit`` (each case's :class:`~strokesynth.data.geometry.PlaneGeometry`), the disk cache
holds every case already on the **working grid** (the dataset's ``size`` and ``mode``), fitted
plane by plane: an ISLES'24 case of 5 channels at 512 x 512 x 80 takes 420 MB at its native grid
and 26 MB at a 128 x 128 working grid, and training reads 16x fewer bytes per slice. Fitting is
plane-wise (see :mod:`strokesynth.data.geometry`), so fitting before caching gives the same
samples as fitting each slice on the way out.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from strokesynth._fs import atomic_file, ensure_writable_dir
from strokesynth.data.case import Case
from strokesynth.data.normalize import Normalization
from strokesynth.errors import DataError

if TYPE_CHECKING:
    from strokesynth.data.geometry import PlaneGeometry


def case_arrays(
    case: Case, modalities: list[str], normalization: Normalization, label_key: str | None = "lesion",
    fit: PlaneGeometry | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Normalised channel stack (C, X, Y, Z) float32 and label (X, Y, Z) uint8 (or ``None``).

    With ``fit`` every modality is normalised on its own grid and fitted to the working grid at
    once ((C, H, W, Z) and (H, W, Z)), so only one native modality is held at a time; a 4D series
    whose normalisation is voxel-wise (``window``, ``none``) is read in its stored dtype and taken
    frame by frame (an int16 512 x 512 x 80 x 40 CTP: 1.7 GB held instead of 3.4 GB of float32
    and its temporaries).

    Raises:
        DataError: a modality is missing or on its own grid, or a file is bad.
    """
    case.require(modalities)
    channels: list[np.ndarray] = []
    for key in modalities:
        if key in case.own_grid:
            raise DataError(case.where or case.id, f"{key!r} is on its own grid; resample it before stacking")
        vol = case[key]
        spec = normalization.spec(key)
        if fit is not None and vol.ndim == 4 and spec.method in ("window", "none"):
            raw, slope, inter = vol.stored()
            for t in range(raw.shape[3]):
                frame = raw[..., t].astype(np.float32)
                if slope != 1.0 or inter != 0.0:
                    frame = frame * np.float32(slope) + np.float32(inter)
                channels.append(_fitted(normalization(key, frame)[None], fit, label=False)[0])
            del raw
            continue
        arr = normalization(key, vol.array)
        if arr.ndim == 4:
            arr = np.moveaxis(arr, 3, 0)
            channels.extend(_fitted(arr, fit, label=False) if fit is not None else arr)
        else:
            channels.append(_fitted(arr[None], fit, label=False)[0] if fit is not None else arr)
        del arr
    image = np.ascontiguousarray(np.stack(channels, axis=0), dtype=np.float32)
    label = None
    if label_key is not None and label_key in case:
        label = (binary_label(case, label_key) > 0).astype(np.uint8)
        if fit is not None:
            label = _fitted(label[None], fit, label=True)[0]
    return image, label


def binary_label(case: Case, key: str = "lesion") -> np.ndarray:
    """The (X, Y, Z) mask ``case[key]``, refused unless it holds only 0 and 1 (never binarised silently).

    Raises:
        DataError: naming the file and the values found.
    """
    raw = np.asarray(case[key].array)
    bad = [v for v in np.unique(raw).tolist() if v not in (0, 1)]
    if bad:
        vol = case[key]
        raise DataError(vol.path or f"{case.where or case.id} [{key}]",
                        f"{key} mask holds values {bad[:5]} besides 0 and 1; binarise it first "
                        "(`strokesynth check` lists such masks)")
    return raw


def check_labels(cases: list[Case], key: str = "lesion") -> None:
    """:func:`binary_label` of every case that has ``key``: call before a run folder is made."""
    for case in cases:
        if key in case:
            binary_label(case, key)


def n_channels(case: Case, modalities: list[str]) -> int:
    """Number of channels :func:`case_arrays` yields (4D series count their frames)."""
    return sum(case[k].shape[3] if case[k].ndim == 4 else 1 for k in modalities)


def _fingerprint(case: Case, modalities: list[str], normalization: Normalization, label_key: str | None,
                 fit: PlaneGeometry | None = None) -> str:
    parts = [case.id, repr(modalities), normalization.fingerprint(), repr(label_key)]
    if fit is not None and fit.original != fit.target:
        parts.append(f"fit:{fit.original}->{fit.target}:{fit.mode}")
    for key in sorted(set(modalities) | ({label_key} if label_key and label_key in case else set())):
        vol = case[key]
        if vol.path is not None and vol.path.exists():
            st = vol.path.stat()
            parts.append(f"{key}:{vol.path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
        else:  # in-memory volume: hash its voxels
            parts.append(f"{key}:" + hashlib.sha1(np.ascontiguousarray(vol.array).tobytes()).hexdigest())
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


class ArrayStore:
    """Serves :func:`case_arrays` results, from memory (LRU) or a memory-mapped disk cache.

    Args:
        cases: the cases served, by position.
        modalities: channel modalities, in order.
        normalization: per-modality normalisation.
        label_key: label modality (``None`` for unlabelled use).
        cache_dir: folder for ``.npy`` files; ``None`` keeps arrays in memory only.
        max_cases_in_memory: LRU size when ``cache_dir`` is ``None``.
        fit: in-plane geometry of case ``index`` (native -> working grid); with ``cache_dir`` the
            cached arrays are stored fitted (``fitted`` is then true and :meth:`get` serves
            (C, H, W, Z) working-grid arrays). Ignored without ``cache_dir``.
    """

    def __init__(
        self,
        cases: list[Case],
        modalities: list[str],
        normalization: Normalization,
        label_key: str | None = "lesion",
        cache_dir: str | os.PathLike | None = None,
        max_cases_in_memory: int = 8,
        fit: Callable[[int], PlaneGeometry] | None = None,
    ) -> None:
        self.cases = cases
        self.modalities = list(modalities)
        self.normalization = normalization
        self.label_key = label_key
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_cases = max(1, max_cases_in_memory)
        self._lru: OrderedDict[int, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._keys: dict[int, str] = {}
        self.fit = fit if cache_dir is not None else None
        if self.cache_dir is not None:
            ensure_writable_dir(self.cache_dir)

    def _paths(self, index: int) -> tuple[Path, Path]:
        if index not in self._keys:
            geo = self.fit(index) if self.fit is not None else None
            self._keys[index] = _fingerprint(self.cases[index], self.modalities, self.normalization, self.label_key, geo)
        stem = f"{self.cases[index].id}-{self._keys[index]}"
        assert self.cache_dir is not None
        return self.cache_dir / f"{stem}_img.npy", self.cache_dir / f"{stem}_lab.npy"

    def prepare(self, index: int) -> None:
        """Make sure case ``index`` is in the disk cache (no-op without a cache folder)."""
        if self.cache_dir is None:
            return
        img_path, lab_path = self._paths(index)
        if img_path.exists():
            return
        image, label = case_arrays(self.cases[index], self.modalities, self.normalization, self.label_key,
                                   self.fit(index) if self.fit is not None else None)
        if label is not None:
            with atomic_file(lab_path, suffix=".npy") as tmp:
                np.save(tmp, label)
        with atomic_file(img_path, suffix=".npy") as tmp:
            np.save(tmp, image)

    @property
    def fitted(self) -> bool:
        """Are served arrays on the working grid (``fit`` given with a disk cache)?"""
        return self.fit is not None

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(image (C, X, Y, Z), label (X, Y, Z) or None) of case ``index``; memory-mapped if cached.
        On the working grid, (C, H, W, Z) and (H, W, Z), when :attr:`fitted`."""
        if self.cache_dir is not None:
            self.prepare(index)
            img_path, lab_path = self._paths(index)
            image = np.load(img_path, mmap_mode="r")
            label = np.load(lab_path, mmap_mode="r") if lab_path.exists() else None
            return image, label
        if index in self._lru:
            self._lru.move_to_end(index)
            return self._lru[index]
        arrays = case_arrays(self.cases[index], self.modalities, self.normalization, self.label_key)
        self._lru[index] = arrays
        while len(self._lru) > self.max_cases:
            self._lru.popitem(last=False)
        return arrays


def _fitted(arr: np.ndarray, geo: PlaneGeometry, *, label: bool, chunk: int = 8) -> np.ndarray:
    """(C, X, Y, Z) -> (C, H, W, Z), dtype kept, by ``geo.to_target``, ``chunk``
    slices at a time (so a 512 x 512 x 80 stack of many channels is never copied whole)."""
    if geo.original == geo.target:
        return arr
    import torch  # lazily: `check`, `convert` and `split` read labels through this module without torch

    c, z = arr.shape[0], arr.shape[3]
    out = np.empty((c, *geo.target, z), dtype=arr.dtype)
    for z0 in range(0, z, chunk):
        part = torch.from_numpy(np.ascontiguousarray(arr[..., z0:z0 + chunk]))
        out[..., z0:z0 + chunk] = geo.to_target(part, label=label).numpy()
    return out
