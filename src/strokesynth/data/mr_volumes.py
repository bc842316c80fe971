"""Whole-brain MR volumes for label-map -> DWI synthesis and the 3D lesion GAN (Platscher et al.).

:func:`prepare_mr_case` turns a case with a DWI, an anatomical label map and (for stroke cases) a
lesion mask into a :class:`MRVolume`: the label map mapped to the table's classes with the lesion
written as the last class, the DWI brain-only, clipped at the 99.5th percentile of the brain and
rescaled to [-1, 1] (background -1), as the paper prepares them; in-plane padded or cropped to
a square ``size``. Studies at another resolution (an ISLES'24 DWI in NCCT space is 512 x 512 x
70-100 at 0.45 x 0.45 x 2 mm) are first put on a working grid by :func:`to_mr_grid` (an
:class:`MRGrid`: pixel size, slice thickness and slice count). Two datasets read them:

- :class:`TranslationSlices`: axial slices with brain, ``label`` one-hot ``(C, S, S)`` and
  ``image`` ``(1, S, S)`` in [-1, 1] - the translation models' pairs;
- :class:`LesionMasks`: the lesion masks of cases with at least ``min_voxels`` lesion voxels,
  ``mask`` ``(1, X, Y, Z)`` in {-1, 1} - the lesion GAN's training set (optionally with their
  left-right mirrors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from strokesynth.data.case import Case
from strokesynth.data.label_maps import LabelTable, one_hot
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError

#: a lesion smaller than this (voxels) neither trains the lesion GAN nor counts as injected
MIN_LESION_VOXELS = 20


@dataclass
class MRVolume:
    """One prepared case (arrays ``(X, Y, Z)`` on the case grid, padded/cropped in-plane to ``size``).

    Attributes:
        classes: class ids (uint8; the table's, lesion last).
        image: DWI in [-1, 1] (float32; -1 outside the brain), or ``None`` for a label map alone.
        brain: brain mask (bool).
        lesion: lesion mask (bool; empty for healthy cases).
        spacing: voxel size (mm).
        affine: voxel -> mm of the prepared grid.
        scale: the DWI value mapped to +1 (its brain 99.5th percentile), to undo the scaling.
    """

    case_id: str
    subject: str
    classes: np.ndarray
    image: np.ndarray | None
    brain: np.ndarray
    lesion: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    scale: float = 1.0

    @property
    def lesion_voxels(self) -> int:
        return int(self.lesion.sum())


def pad_crop_xy(a: np.ndarray, size: int, fill: float = 0, axes: tuple[int, ...] = (0, 1)) -> np.ndarray:
    """Centre-pad (with ``fill``) or centre-crop the first two axes of ``a`` (or ``axes``) to ``size``."""
    out = a
    for axis in axes:
        n = out.shape[axis]
        if n < size:
            before = (size - n) // 2
            pad = [(0, 0)] * out.ndim
            pad[axis] = (before, size - n - before)
            out = np.pad(out, pad, constant_values=fill)
        elif n > size:
            start = (n - size) // 2
            out = np.take(out, np.arange(start, start + size), axis=axis)
    return out


@dataclass
class MRGrid:
    """The working grid every case is put on before :func:`prepare_mr_case` (0: as stored).

    Attributes:
        spacing_mm: in-plane pixel size (mm); the field of view is kept, then padded or cropped
            to the translation size.
        slice_mm: slice thickness (mm), the z extent kept.
        slices: slices kept, centre-padded (with background) or cropped; the lesion GAN needs a
            power of two.
    """

    spacing_mm: float = 0.0
    slice_mm: float = 0.0
    slices: int = 0

    def __post_init__(self) -> None:
        if self.spacing_mm < 0 or self.slice_mm < 0 or self.slices < 0:
            raise ConfigError("grid", f"spacing_mm, slice_mm and slices must not be negative, got {self}")

    @property
    def as_stored(self) -> bool:
        return not (self.spacing_mm or self.slice_mm or self.slices)


def _resampled(array: np.ndarray, shape: tuple[int, int, int], label: bool) -> np.ndarray:
    """``array`` (X, Y, Z) on ``shape`` over the same extent: labels take the nearest voxel centre,
    images the mean over each new voxel where it shrinks (no aliasing) and linear interpolation
    where it grows. Returns the input dtype."""
    if tuple(array.shape) == tuple(shape):
        return array
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if label:
        x = F.interpolate(x, size=shape, mode="nearest-exact")
    else:
        down = tuple(min(a, b) for a, b in zip(array.shape, shape, strict=True))
        x = F.adaptive_avg_pool3d(x, down)
        if down != tuple(shape):
            x = F.interpolate(x, size=shape, mode="trilinear", align_corners=False)
    out = x[0, 0].numpy()
    return np.rint(out).astype(array.dtype) if label else out.astype(array.dtype, copy=False)


def to_mr_grid(case: Case, grid: MRGrid, keys: tuple[str, ...] = ("dwi", "anatomy", "lesion", "brain")) -> Case:
    """``case`` with only ``keys`` (those it has) on ``grid`` (see :class:`MRGrid`), read one volume at a time.

    The field of view is kept: a new voxel ``i`` is centred on the stored voxel index
    ``(i + 0.5) r - 0.5`` with ``r`` = stored / new voxel count per axis, and the affine says so.
    """
    have = [k for k in keys if k in case]
    if grid.as_stored:
        return case.select(have)
    ref = case[have[0]]
    sx, sy, sz = ref.spacing
    n = ref.spatial_shape
    step = (grid.spacing_mm or sx, grid.spacing_mm or sy, grid.slice_mm or sz)
    shape = tuple(max(1, int(round(n[i] * (sx, sy, sz)[i] / step[i]))) for i in range(3))
    r = [n[i] / shape[i] for i in range(3)]
    scale = np.eye(4)
    scale[:3, :3] = np.diag(r)
    scale[:3, 3] = [(ri - 1) / 2 for ri in r]
    nz = grid.slices or shape[2]
    shift = np.eye(4)
    shift[2, 3] = (shape[2] - nz) // 2 if shape[2] > nz else -((nz - shape[2]) // 2)
    affine = np.asarray(ref.affine, float) @ scale @ shift
    out = {}
    for key in have:
        vol = case[key]
        if not vol.same_grid(ref):
            raise DataError(case.where or case.id, f"'{key}' {vol.spatial_shape} is on a different grid from "
                                                   f"'{have[0]}' {n} (resample one onto the other first)")
        label = vol.kind == "label"
        arr = pad_crop_xy(_resampled(np.asarray(vol.array), shape, label), nz, axes=(2,))
        out[key] = Volume(arr, affine, kind=vol.kind, meta=dict(vol.meta))
    return Case(case.id, case.subject, out, where=case.where, meta=dict(case.meta))


def _shifted_affine(affine: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
    aff = np.array(affine, float)
    offset = np.array([(n - size) // 2 if n > size else -((size - n) // 2) for n in shape[:2]] + [0], float)
    aff[:3, 3] = aff[:3, 3] + aff[:3, :3] @ offset
    return aff


def prepare_mr_case(case: Case, table: LabelTable, *, size: int, image: str | None = "dwi",
                    anatomy: str = "anatomy", clip_percentile: float = 99.5) -> MRVolume:
    """A case as an :class:`MRVolume` (see the module docstring).

    Args:
        table: maps the case's ``anatomy`` ids onto classes (unmapped ids: :class:`DataError`).
        size: in-plane size after centre pad/crop.
        image: the modality to synthesise (``dwi``), or ``None`` for a label map alone (a
            healthy map to inject lesions into).
        clip_percentile: of the brain's DWI values, mapped to +1 (99.5 in the paper).

    Raises:
        DataError: no label map, a label map on another grid than the image, unmapped label ids.
    """
    where = case.where or case.id
    if anatomy not in case:
        raise DataError(where, f"no anatomical label map '{anatomy}' (label-map synthesis needs one per case)")
    lab = case[anatomy]
    if image is not None:
        if image not in case:
            raise DataError(where, f"no '{image}' image")
        if not lab.same_grid(case[image]):
            raise DataError(where, f"label map '{anatomy}' {lab.spatial_shape} is on a different grid from its "
                                   f"'{image}' {case[image].spatial_shape} (resample one onto the other first)")
    classes = table.to_classes(np.asarray(lab.array), f"{where} ({anatomy})")
    lesion = classes == table.lesion
    if case.label is not None:
        if not case.label.same_grid(lab):
            raise DataError(where, "lesion mask is on a different grid from the label map")
        lesion |= np.asarray(case.label.array) > 0
    classes[lesion] = table.lesion
    brain = np.asarray(case["brain"].array) > 0 if "brain" in case and case["brain"].same_grid(lab) else classes > 0
    brain |= lesion
    shape = classes.shape
    dwi, scale = None, 1.0
    if image is not None:
        x = np.asarray(case[image].array, np.float32)
        vals = x[brain]
        if vals.size == 0:
            raise DataError(where, "the brain mask is empty")
        scale = float(np.percentile(vals, clip_percentile))
        if not scale > 0:
            raise DataError(where, f"'{image}' is not positive inside the brain")
        dwi = np.where(brain, np.clip(x / scale, 0, 1) * 2 - 1, -1).astype(np.float32)
        dwi = pad_crop_xy(dwi, size, -1.0)
    return MRVolume(case.id, case.subject, pad_crop_xy(classes, size, 0), dwi, pad_crop_xy(brain, size, False),
                    pad_crop_xy(lesion, size, False), tuple(float(s) for s in lab.spacing),
                    _shifted_affine(lab.affine, shape, size), scale)


class TranslationSlices(Dataset):
    """Axial slices of prepared volumes with any brain: ``{"label": (C, S, S), "image": (1, S, S), "lesion": bool}``.

    ``lesion_flags()`` marks slices with lesion pixels (for lesion-aware batches).
    """

    def __init__(self, volumes: list[MRVolume], n_classes: int, *, min_brain_px: int = 1) -> None:
        if any(v.image is None for v in volumes):
            raise ValueError("TranslationSlices needs images")
        self.volumes = volumes
        self.n_classes = n_classes
        self.index = [(i, z) for i, v in enumerate(volumes) for z in range(v.classes.shape[2])
                      if int(v.brain[:, :, z].sum()) >= min_brain_px]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        i, z = self.index[item]
        v = self.volumes[i]
        return {"label": one_hot(np.ascontiguousarray(v.classes[:, :, z]), self.n_classes),
                "image": torch.from_numpy(np.ascontiguousarray(v.image[None, :, :, z])),  # type: ignore[index]
                "lesion": torch.tensor(bool(v.lesion[:, :, z].any()))}

    def lesion_flags(self) -> np.ndarray:
        return np.array([bool(self.volumes[i].lesion[:, :, z].any()) for i, z in self.index])


class LesionMasks(Dataset):
    """Lesion masks of volumes with at least ``min_voxels`` lesion voxels: ``{"mask": (1, X, Y, Z)}`` in {-1, 1}."""

    def __init__(self, volumes: list[MRVolume], *, min_voxels: int = MIN_LESION_VOXELS, where: str = "stroke cohort",
                 flip: bool = False) -> None:
        self.masks = [v.lesion for v in volumes if v.lesion_voxels >= min_voxels]
        if not self.masks:
            raise DataError(where, f"no case has a lesion mask of {min_voxels} voxels or more (the lesion GAN "
                                   "trains on those)")
        shapes = {m.shape for m in self.masks}
        if len(shapes) > 1:
            raise DataError(where, f"lesion masks lie on different grids {sorted(shapes)}; the 3D lesion GAN needs one")
        self.shape: tuple[int, int, int] = self.masks[0].shape  # type: ignore[assignment]
        self.case_ids = [v.case_id for v in volumes if v.lesion_voxels >= min_voxels]
        self.flip = bool(flip)

    def training_masks(self) -> list[np.ndarray]:
        """The masks the GAN sees: each mask, and its left-right mirror (axis 0) with ``flip``."""
        return self.masks + ([m[::-1].copy() for m in self.masks] if self.flip else [])

    def __len__(self) -> int:
        return len(self.masks) * (2 if self.flip else 1)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        m = self.masks[item % len(self.masks)]
        if item >= len(self.masks):
            m = m[::-1]
        return {"mask": torch.from_numpy(np.ascontiguousarray(m[None]).astype(np.float32) * 2 - 1)}
