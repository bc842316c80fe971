"""PyTorch datasets over cases: 2D slices and 3D volumes, with the way back to NIfTI space.

Both datasets stack the chosen modalities as channels (normalised per volume, see
:mod:`strokesynth.data.normalize`), fit the in-plane grid to a target size (see
:mod:`strokesynth.data.geometry`), optionally augment images and labels with one shared
spatial transform (see :mod:`strokesynth.data.augment`), and give back per sample:

- ``image``: float32 tensor, (C, H, W) for slices or (C, H, W, Z') for volumes;
- ``label``: int64 tensor (1, H, W) / (1, H, W, Z'), 0 where no label exists (``has_label``
  tells which);
- ``case``: the case id; ``index``: the case's position; ``z``: the slice (slices only).

:meth:`assemble` takes network outputs in target space and returns a
:class:`~strokesynth.data.volume.Volume` on the case's own grid with its affine, ready to be
written as NIfTI. Augmentation draws come from ``(seed, epoch, sample index)``, so a run is
reproducible whatever the number of data-loader workers; call :meth:`set_epoch` each epoch
(the epoch lives in shared memory, so persistent workers follow it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from strokesynth.data.arrays import ArrayStore, n_channels
from strokesynth.data.augment import AugmentConfig, SpatialAugment
from strokesynth.data.case import Case
from strokesynth.data.geometry import Mode, PlaneGeometry
from strokesynth.data.normalize import Normalization
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError


class _CaseDataset(Dataset):
    def __init__(
        self,
        cases: Sequence[Case],
        modalities: Sequence[str],
        *,
        label_key: str | None,
        size: tuple[int, int] | None,
        mode: Mode,
        normalization: Normalization | None,
        augment: AugmentConfig | None,
        seed: int,
        cache_dir: str | os.PathLike | None,
        patch: tuple[int, int] | None = None,
        crop_patches: bool = False,
        patch_foreground: float = 1 / 3,
    ) -> None:
        if not cases:
            raise DataError(None, "no cases given to the dataset")
        if not modalities:
            raise ConfigError("modalities", "choose at least one input modality")
        self.cases = list(cases)
        self.modalities = list(modalities)
        self.label_key = label_key
        for case in self.cases:
            case.require(self.modalities)
            bad = sorted(set(self.modalities) & case.own_grid)
            if bad:
                raise DataError(case.where or case.id, f"{', '.join(bad)} is on its own grid; it cannot be a channel")
        counts = {n_channels(c, self.modalities) for c in self.cases}
        if len(counts) != 1:
            raise DataError(None, f"cases give different channel counts {sorted(counts)} (4D series of unequal length?)")
        self.channels = counts.pop()
        self.size = tuple(size) if size is not None else None
        self.mode = mode
        self.normalization = normalization or Normalization()
        # with a disk cache the arrays are cached on the working grid (fitted once, not per sample)
        self.store = ArrayStore(self.cases, self.modalities, self.normalization, label_key, cache_dir,
                                fit=self.geometry)
        self.augment = SpatialAugment(augment) if augment is not None else None
        self.seed = int(seed)
        # in shared memory, so persistent DataLoader workers see set_epoch() of the main process
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.patch = (int(patch[0]), int(patch[1])) if patch and min(patch) > 0 else None
        self.crop_patches = bool(crop_patches) and self.patch is not None
        self.patch_foreground = float(patch_foreground)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws for a new epoch (seen by persistent loader workers too)."""
        self._epoch[0] = int(epoch)

    def geometry(self, index: int) -> PlaneGeometry:
        """In-plane geometry of case ``index``."""
        x, y, _ = self.cases[index].spatial_shape
        target = self.size or (x, y)
        return PlaneGeometry((x, y), (int(target[0]), int(target[1])), self.mode)

    def sample_geometry(self, index: int) -> PlaneGeometry:
        """What still maps the served arrays of case ``index`` onto the working grid: the identity
        when the store caches them fitted, else :meth:`geometry`."""
        if self.store.fitted:
            target = self.geometry(index).target
            return PlaneGeometry(target, target, self.mode)
        return self.geometry(index)

    def native_channel(self, index: int, key: str) -> np.ndarray:
        """The normalised (X, Y, Z) float32 channel ``key`` (a 3D modality of the stack) of case
        ``index`` on the case's own grid, as scored against a prediction put back there."""
        if not self.store.fitted:
            channel = n_channels(self.cases[index], self.modalities[:self.modalities.index(key)])
            return np.asarray(self.store.get(index)[0][channel])
        return np.asarray(self.normalization(key, self.cases[index][key].array), dtype=np.float32)

    def _rng(self, sample: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, sample])

    def _finish(self, sample: int, image: np.ndarray, label: np.ndarray | None, geo: PlaneGeometry) -> dict:
        img = geo.to_target(torch.from_numpy(_owned(image, np.float32)))
        has_label = label is not None
        lab = torch.from_numpy(_owned(label, np.uint8))[None] if has_label else None
        if lab is not None:
            lab = geo.to_target(lab, label=True)
        params: dict = {"order": []}
        if self.augment is not None:
            img, lab, params = self.augment(img, lab, self._rng(sample))
        if lab is None:
            lab = torch.zeros((1, *img.shape[1:]), dtype=torch.uint8)
        return {"image": img.contiguous(), "label": lab.long(), "has_label": has_label, "augment": repr(params)}

    def _crop(self, item: int, sample: dict) -> dict:
        """One ``patch`` (in plane) of a finished sample, (C, H, W) or (C, H, W, Z): centred on a
        lesion pixel (of the slice, or of the volume's in-plane projection) with probability
        ``patch_foreground`` when there is one, else anywhere; zero where it leaves the plane; z is
        kept whole. Draws from ``(seed, epoch, item)`` on a stream of its own (the augmentation's
        are unchanged)."""
        rng = np.random.default_rng([self.seed, self.epoch, item, 1])
        img, lab = sample["image"], sample["label"]
        h, w = img.shape[1:3]
        ph, pw = self.patch
        plane = lab[0] > 0
        while plane.ndim > 2:
            plane = plane.any(-1)
        lesion = torch.nonzero(plane)
        if len(lesion) and rng.random() < self.patch_foreground:
            cy, cx = (int(v) for v in lesion[int(rng.integers(len(lesion)))])
        else:
            cy, cx = int(rng.integers(h)), int(rng.integers(w))
        # top-left corner, kept inside the plane where the plane is at least as large as the patch
        y0 = min(max(cy - ph // 2, 0), max(h - ph, 0)) if h >= ph else (h - ph) // 2
        x0 = min(max(cx - pw // 2, 0), max(w - pw, 0)) if w >= pw else (w - pw) // 2
        out = {}
        for key, t in (("image", img), ("label", lab)):
            patch = t.new_zeros((t.shape[0], ph, pw, *t.shape[3:]))
            ys, xs = max(y0, 0), max(x0, 0)
            ye, xe = min(y0 + ph, h), min(x0 + pw, w)
            patch[:, ys - y0:ye - y0, xs - x0:xe - x0] = t[:, ys:ye, xs:xe]
            out[key] = patch
        return {**sample, **out, "patch": (y0, x0)}

    def _lesion_mask(self, index: int) -> np.ndarray | None:
        """The case's (X, Y, Z) lesion mask, or ``None`` without a label."""
        case = self.cases[index]
        if self.label_key is None or self.label_key not in case:
            return None
        return np.asarray(case[self.label_key].array) > 0

    def prepare_cache(self, progress: bool = False) -> None:
        """Fill the on-disk cache for every case now (no-op without ``cache_dir``)."""
        from tqdm import tqdm

        for i in tqdm(range(len(self.cases)), desc="caching", disable=not progress, unit="case"):
            self.store.prepare(i)

    def _assemble(self, index: int, prediction: torch.Tensor | np.ndarray, kind: str) -> Volume:
        case = self.cases[index]
        pred = torch.as_tensor(np.asarray(prediction))
        geo = self.geometry(index)
        label = kind == "label"
        back = geo.to_original(pred, label=label)
        arr = back.numpy()
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
        ref = case.reference
        if label:
            arr = arr.astype(np.uint8)
            return Volume(arr, ref.affine.copy(), kind="label")
        return Volume(arr.astype(np.float32), ref.affine.copy(), kind="image")


def _owned(arr: np.ndarray, dtype: type) -> np.ndarray:
    """``arr`` as a contiguous, writable array of ``dtype`` (a copy where it is a read-only
    memory map, as served from the disk cache)."""
    out = np.ascontiguousarray(arr, dtype=dtype)
    return out if out.flags.writeable else out.copy()


class SliceDataset(_CaseDataset):
    """Axial (z) slices of every case as 2D samples.

    Args:
        cases: the cases (lazy is fine; voxels are read on first use of each case).
        modalities: channel keys in order, e.g. ``["ct", "cbf", "cbv", "mtt", "tmax"]``.
        label_key: label modality, or ``None``.
        size: in-plane target (H, W), e.g. (256, 256); ``None`` keeps each case's size.
        mode: ``"pad_crop"`` or ``"resample"`` (see :mod:`strokesynth.data.geometry`).
        normalization: per-modality normalisation (defaults documented in its module).
        augment: spatial augmentation config, or ``None`` for none (validation, inference).
        seed: seed of the augmentation draws.
        cache_dir: on-disk cache of preprocessed arrays (recommended for training).
        only_lesion_slices: keep only slices whose label has lesion voxels.
        patch: (h, w) in pixels of the working grid (``size``), or ``None`` for whole slices.
            With ``crop_patches`` each sample is one patch of that size cut from its slice after
            augmentation (zero-padded where the slice is smaller); inference reads ``patch`` to
            run a sliding window (:func:`strokesynth.engine.inference.case_outputs`).
        crop_patches: cut training patches (training datasets only; inference keeps whole slices).
        patch_foreground: share of patches centred on a lesion pixel of the slice when it has
            one (nnU-Net's foreground oversampling; the others are centred anywhere).

    Samples: ``image`` (C, H, W) float32, ``label`` (1, H, W) int64, ``case``, ``index``, ``z``.
    """

    def __init__(
        self,
        cases: Sequence[Case],
        modalities: Sequence[str],
        *,
        label_key: str | None = "lesion",
        size: tuple[int, int] | None = (256, 256),
        mode: Mode = "pad_crop",
        normalization: Normalization | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        only_lesion_slices: bool = False,
        patch: tuple[int, int] | None = None,
        crop_patches: bool = False,
        patch_foreground: float = 1 / 3,
    ) -> None:
        super().__init__(
            cases,
            modalities,
            label_key=label_key,
            size=size,
            mode=mode,
            normalization=normalization,
            augment=augment,
            seed=seed,
            cache_dir=cache_dir,
            patch=patch,
            crop_patches=crop_patches,
            patch_foreground=patch_foreground,
        )
        self.index: list[tuple[int, int]] = []
        for i, case in enumerate(self.cases):
            zs = range(case.spatial_shape[2])
            if only_lesion_slices:
                label = case.label
                if label is None:
                    continue
                mask = label.array > 0
                zs = [z for z in zs if mask[:, :, z].any()]
            self.index.extend((i, z) for z in zs)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        case_index, z = self.index[item]
        image, label = self.store.get(case_index)
        sample = self._finish(
            item,
            np.asarray(image[:, :, :, z]),
            None if label is None else np.asarray(label[:, :, z]),
            self.sample_geometry(case_index),
        )
        if self.crop_patches:
            sample = self._crop(item, sample)
        sample.update(case=self.cases[case_index].id, index=case_index, z=z)
        return sample

    def lesion_flags(self) -> np.ndarray:
        """Per item: does the slice hold lesion voxels (for lesion-aware batches)?"""
        masks = [self._lesion_mask(i) for i in range(len(self.cases))]
        return np.array([masks[c] is not None and bool(masks[c][:, :, z].any()) for c, z in self.index], bool)

    def slices_of(self, case_index: int) -> list[int]:
        """Dataset items that belong to case ``case_index``, in z order."""
        return [i for i, (c, _) in enumerate(self.index) if c == case_index]

    def assemble(self, case_index: int, slices: torch.Tensor | np.ndarray, kind: str = "image") -> Volume:
        """Stack per-slice outputs back into a Volume on the case's grid, with its affine.

        Args:
            slices: (Z, K, H, W) network outputs for all Z slices of the case in z order
                (K channels, e.g. 1 probability map), or (Z, H, W).
            kind: ``"image"`` (float, bilinear when resampling) or ``"label"`` (nearest).

        Returns:
            A Volume of shape (X, Y, Z) for K == 1, else (X, Y, Z, K).
        """
        s = torch.as_tensor(np.asarray(slices))
        if s.ndim == 3:
            s = s[:, None]
        nz = self.cases[case_index].spatial_shape[2]
        if s.shape[0] != nz:
            raise DataError(None, f"got {s.shape[0]} slices for case {self.cases[case_index].id} with {nz}")
        return self._assemble(case_index, s.permute(1, 2, 3, 0), kind)


class VolumeDataset(_CaseDataset):
    """Whole cases as 3D samples, in-plane fitted to ``size`` and z padded to a multiple.

    Args:
        z_multiple: pad z at the end (with 0) to a multiple of this (e.g. 4 for two z-poolings);
            1 keeps the slab as is. Slabs of 2 slices work with (2, 2, 1) pooling.
        patch: (h, w) in-plane patch of the working grid, z kept whole; with ``crop_patches``
            each training sample is one (C, h, w, Z') block, and inference runs a sliding window
            of (h, w, Z') (an 80-slice ISLES'24 volume at 256 px does not fit 12 GB whole).
        Other arguments as :class:`SliceDataset`.

    Samples: ``image`` (C, H, W, Z') float32, ``label`` (1, H, W, Z') int64, ``case``, ``index``,
    ``z`` (the original slice count). Batch cases of equal Z' only (or use batch size 1).
    """

    def __init__(
        self,
        cases: Sequence[Case],
        modalities: Sequence[str],
        *,
        label_key: str | None = "lesion",
        size: tuple[int, int] | None = (256, 256),
        mode: Mode = "pad_crop",
        normalization: Normalization | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        z_multiple: int = 1,
        patch: tuple[int, int] | None = None,
        crop_patches: bool = False,
        patch_foreground: float = 1 / 3,
    ) -> None:
        super().__init__(
            cases,
            modalities,
            label_key=label_key,
            size=size,
            mode=mode,
            normalization=normalization,
            augment=augment,
            seed=seed,
            cache_dir=cache_dir,
            patch=patch,
            crop_patches=crop_patches,
            patch_foreground=patch_foreground,
        )
        if z_multiple < 1:
            raise ConfigError("z_multiple", f"must be >= 1, got {z_multiple}")
        self.z_multiple = int(z_multiple)

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, item: int) -> dict:
        image, label = self.store.get(item)
        sample = self._finish(
            item, np.asarray(image), None if label is None else np.asarray(label), self.sample_geometry(item)
        )
        nz = image.shape[3]
        pad = (-nz) % self.z_multiple
        if pad:
            sample["image"] = torch.nn.functional.pad(sample["image"], (0, pad))
            sample["label"] = torch.nn.functional.pad(sample["label"], (0, pad))
        if self.crop_patches:
            sample = self._crop(item, sample)
        sample.update(case=self.cases[item].id, index=item, z=nz)
        return sample

    def lesion_flags(self) -> np.ndarray:
        """Per case: does it hold lesion voxels?"""
        return np.array([m is not None and bool(m.any()) for m in map(self._lesion_mask, range(len(self.cases)))], bool)

    def assemble(self, case_index: int, output: torch.Tensor | np.ndarray, kind: str = "image") -> Volume:
        """Put a (K, H, W, Z') network output back on the case's grid (see SliceDataset.assemble)."""
        out = torch.as_tensor(np.asarray(output))
        if out.ndim == 3:
            out = out[None]
        nz = self.cases[case_index].spatial_shape[2]
        return self._assemble(case_index, out[..., :nz], kind)
