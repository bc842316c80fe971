"""The data part of every run's config, and the datasets it builds for one fold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from strokesynth.config import bounded
from strokesynth.data.augment import AugmentConfig
from strokesynth.data.case import Case
from strokesynth.data.datasets import SliceDataset, VolumeDataset
from strokesynth.data.normalize import Normalization, NormSpec, default_normalization
from strokesynth.data.splits import Splits
from strokesynth.errors import ConfigError


@dataclass
class DataConfig:
    """Where the data is and how it becomes tensors.

    Attributes:
        dataset: data set folder (any supported layout).
        layout: ``auto`` or a layout name.
        modalities: input channels in order (CT perfusion default: CT, CBF, CBV, MTT, Tmax).
        label: label modality key (``lesion``).
        size: in-plane target (H, W) in pixels.
        mode: ``pad_crop`` or ``resample`` to reach ``size``.
        normalization: modality key -> normalisation spec (defaults in ``data.normalize``).
        augment: spatial augmentation of training samples.
        augment_enabled: switch augmentation off without losing its settings.
        cache_dir: folder for preprocessed arrays (empty: keep in memory).
        derived: folders of derived volumes to add to the cases, in the plain layout
            ``FOLDER/<case id>/<key>.nii.gz`` (e.g. the out-of-fold ``dwi_gen`` of a CT-to-MR
            synthesis run); the data set itself is never written to.
        patch: (h, w) training patch in pixels of the working grid (``size``); (0, 0) trains on
            whole slices. Set, each training sample is one patch (``patch_foreground`` of them
            centred on lesion), and inference runs a sliding window of that size (overlap 0.25,
            Gaussian blending) over the whole slice: nnU-Net's practice for slices too large to
            batch. For the 3D models a patch is (h, w) in plane with every slice of the volume
            (blocks of h x w x Z'; windows one at a time at inference).
        patch_foreground: share of training patches centred on a lesion pixel when the slice has one.
        pixel_mm: in-plane pixel size (mm) ``predict`` brings a case of another pixel size to
            (and the result back). 0 (default): the size ``train`` measured on its cases (their
            median, in the run's ``measured.json`` and each checkpoint's ``measured`` record);
            without such a record cases are used as stored.
    """

    dataset: str = ""
    layout: str = "auto"
    modalities: list[str] = field(default_factory=lambda: ["ct", "cbf", "cbv", "mtt", "tmax"])
    label: str = "lesion"
    size: tuple[int, int] = bounded((256, 256), lo=16, hi=4096)
    mode: Literal["pad_crop", "resample"] = "pad_crop"
    normalization: dict[str, NormSpec] = field(default_factory=default_normalization)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    augment_enabled: bool = True
    cache_dir: str = ""
    derived: list[str] = field(default_factory=list)
    pixel_mm: float = bounded(0.0, lo=0.0)
    patch: tuple[int, int] = bounded((0, 0), lo=0, hi=4096)
    patch_foreground: float = bounded(1 / 3, lo=0.0, hi=1.0)

    def __post_init__(self) -> None:
        patch = list(self.patch)
        if len(patch) != 2 or (any(patch) and not all(patch)):
            raise ConfigError("data.patch", f"give both sides of the patch, or [0, 0] for whole slices (got {patch})")
        if any(side % 16 for side in patch):
            raise ConfigError("data.patch", f"patch sides must be multiples of 16 (the slice networks pool 4 times), "
                                            f"got {patch}")


def make_dataset(cases: list[Case], cfg: DataConfig, *, seed: int, train: bool = False,
                 kind: Literal["slices", "volumes"] = "slices", modalities: Sequence[str] | None = None,
                 with_label: bool = True) -> SliceDataset | VolumeDataset:
    """The one builder of datasets from a data config.

    Args:
        seed: the run's seed (augmentation draws).
        train: augment (when the config enables it); validation and inference never do.
        modalities: channels (default ``cfg.modalities``; a synthesis adds its target last).
        with_label: read ``cfg.label`` (off for inference on cases without one).
    """
    common = dict(label_key=cfg.label if with_label else None, size=cfg.size, mode=cfg.mode,
                  normalization=Normalization(dict(cfg.normalization)),
                  augment=cfg.augment if train and cfg.augment_enabled else None, seed=seed,
                  cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None)
    patches = dict(patch=tuple(cfg.patch) if any(cfg.patch) else None, crop_patches=train,
                   patch_foreground=cfg.patch_foreground)
    if kind == "volumes":
        return VolumeDataset(cases, list(modalities or cfg.modalities), **common, **patches)
    return SliceDataset(cases, list(modalities or cfg.modalities), **common, **patches)


def fold_datasets(
    cases: list[Case], cfg: DataConfig, splits: Splits, fold: int, *, seed: int = 0,
    kind: Literal["slices", "volumes"] = "slices",
) -> tuple[SliceDataset | VolumeDataset, SliceDataset | VolumeDataset]:
    """(train, held-out) datasets of ``fold``: augmentation on the training side only."""
    by_id = {c.id: c for c in cases}
    f = splits.folds[fold]
    return (make_dataset([by_id[c] for c in f.train_cases], cfg, seed=seed, train=True, kind=kind),
            make_dataset([by_id[c] for c in f.val_cases], cfg, seed=seed, kind=kind))
