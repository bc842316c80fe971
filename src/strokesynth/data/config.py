"""The data part of every run's config, and the datasets it builds for one fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from strokesynth.data.augment import AugmentConfig
from strokesynth.data.case import Case
from strokesynth.data.datasets import SliceDataset, VolumeDataset
from strokesynth.data.normalize import Normalization, NormSpec, default_normalization
from strokesynth.data.splits import Splits


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
        folds: number of subject-level cross-validation folds.
        seed: the one seed for splits and augmentation.
        cache_dir: folder for preprocessed arrays (empty: keep in memory).
        derived: folders of derived volumes to add to the cases, in the plain layout
            ``FOLDER/<case id>/<key>.nii.gz`` (e.g. the out-of-fold ``dwi_gen`` of a CT-to-MR
            synthesis run); the data set itself is never written to.
    """

    dataset: str = ""
    layout: str = "auto"
    modalities: list[str] = field(default_factory=lambda: ["ct", "cbf", "cbv", "mtt", "tmax"])
    label: str = "lesion"
    size: tuple[int, int] = (256, 256)
    mode: Literal["pad_crop", "resample"] = "pad_crop"
    normalization: dict[str, NormSpec] = field(default_factory=default_normalization)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    augment_enabled: bool = True
    folds: int = 5
    seed: int = 0
    cache_dir: str = ""
    derived: list[str] = field(default_factory=list)


def fold_datasets(
    cases: list[Case], cfg: DataConfig, splits: Splits, fold: int, *, kind: Literal["slices", "volumes"] = "slices"
) -> tuple[SliceDataset | VolumeDataset, SliceDataset | VolumeDataset]:
    """(train, validation) datasets of ``fold``: augmentation on the training side only."""
    by_id = {c.id: c for c in cases}
    f = splits.folds[fold]
    cls = SliceDataset if kind == "slices" else VolumeDataset
    common = dict(
        label_key=cfg.label,
        size=cfg.size,
        mode=cfg.mode,
        normalization=Normalization(dict(cfg.normalization)),
        seed=cfg.seed,
        cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
    )
    train = cls([by_id[c] for c in f.train_cases], cfg.modalities,
                augment=cfg.augment if cfg.augment_enabled else None, **common)
    val = cls([by_id[c] for c in f.val_cases], cfg.modalities, augment=None, **common)
    return train, val
