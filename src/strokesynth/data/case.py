"""`Case`: one scan of one subject, as a mapping of modality key -> Volume.

Several cases may share a subject (ISLES 2018 gives some patients two slabs); splits are
always made by subject. The lesion label, when present, is the ``"lesion"`` modality.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strokesynth.data.modalities import get_modality
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError

LABEL_KEY = "lesion"

#: Affine tolerance (mm and direction-cosine units) for "same grid" between modalities.
AFFINE_ATOL = 1e-3


@dataclass
class Case:
    """One scan: id, subject, modalities and free-form metadata.

    Attributes:
        id: unique case id within a data set (``"case_12"``, ``"sub-x_ses-1"``).
        subject: subject id; cases of the same subject never go to different folds.
        modalities: modality key -> Volume; the lesion mask, if any, is under ``"lesion"``.
        own_grid: modality keys allowed to live on their own grid (e.g. a FLAIR at another
            resolution); all other 3D volumes, and the spatial part of 4D ones, must share
            shape and affine.
        meta: free-form facts (source layout, folder, sidecars...).
        where: a path or name used in error messages (the case folder).
    """

    id: str
    subject: str
    modalities: dict[str, Volume]
    own_grid: frozenset[str] = frozenset()
    meta: dict[str, Any] = field(default_factory=dict)
    where: str | None = None

    def __post_init__(self) -> None:
        self.own_grid = frozenset(self.own_grid)
        self.validate()

    # -- access -----------------------------------------------------------------------------
    @property
    def label(self) -> Volume | None:
        """The lesion mask, or ``None`` for a case without ground truth."""
        return self.modalities.get(LABEL_KEY)

    @property
    def image_keys(self) -> list[str]:
        """Keys of the non-label modalities, sorted."""
        return sorted(k for k in self.modalities if get_modality(k).kind == "image")

    def __getitem__(self, key: str) -> Volume:
        try:
            return self.modalities[key]
        except KeyError:
            have = ", ".join(sorted(self.modalities)) or "none"
            raise DataError(self._where(), f"missing modality {key!r} (case has: {have})") from None

    def __contains__(self, key: str) -> bool:
        return key in self.modalities

    def require(self, keys: Iterable[str]) -> None:
        """Raise a :class:`DataError` naming the case if any of ``keys`` is missing."""
        missing = [k for k in keys if k not in self.modalities]
        if missing:
            have = ", ".join(sorted(self.modalities)) or "none"
            raise DataError(self._where(), f"missing modality {', '.join(missing)} (case has: {have})")

    @property
    def reference(self) -> Volume:
        """The volume that defines the case's grid: the first shared-grid modality."""
        for key in sorted(self.modalities):
            if key not in self.own_grid:
                return self.modalities[key]
        raise DataError(self._where(), "case has no volume on the shared grid")

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return self.reference.spatial_shape

    @property
    def affine(self) -> np.ndarray:
        return self.reference.affine

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.reference.spacing

    def lesion_volume_ml(self) -> float | None:
        """Lesion volume in ml (voxels > 0 times voxel volume), or ``None`` without a label."""
        label = self.label
        if label is None:
            return None
        return float(np.count_nonzero(label.array)) * label.voxel_volume_ml

    def _where(self) -> str:
        return self.where or f"case {self.id}"

    # -- checks -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Check keys, dimensionality, kinds and grids from the headers (no voxels read).

        Raises:
            DataError: naming the file (or case) and the problem.
        """
        if not self.id:
            raise DataError(self.where, "case id is empty")
        if not self.modalities:
            raise DataError(self._where(), "case has no volumes")
        shared: list[tuple[str, Volume, str]] = []
        for key in sorted(self.modalities):
            vol = self.modalities[key]
            where = str(vol.path) if vol.path is not None else f"{self._where()} [{key}]"
            spec = get_modality(key, where)
            if vol.ndim != spec.ndim:
                want = "3D (x, y, z)" if spec.ndim == 3 else "4D (x, y, z, t)"
                raise DataError(
                    where, f"modality {key!r} must be {want}, got {vol.ndim}D of shape {vol.shape}"
                )
            if vol.kind != spec.kind:
                raise DataError(where, f"modality {key!r} is a {spec.kind} but was loaded as {vol.kind}")
            if min(vol.spatial_shape) < 2:
                raise DataError(
                    where,
                    f"volume of shape {vol.shape} has a single slice along an axis; at least 2 are needed",
                )
            if key not in self.own_grid:
                shared.append((key, vol, where))
        if len(shared) < 2:
            return
        # the grid most volumes agree on is the reference, so the odd one out is named
        shapes = [v.spatial_shape for _, v, _ in shared]
        ref_shape = max(shapes, key=shapes.count)
        for key, vol, where in shared:
            if vol.spatial_shape != ref_shape:
                rkey = next(k for k, v, _ in shared if v.spatial_shape == ref_shape)
                raise DataError(
                    where,
                    f"shape {vol.spatial_shape} of {key!r} does not match {ref_shape} of {rkey!r}",
                )
        agree = [sum(np.allclose(v.affine, w.affine, atol=AFFINE_ATOL, rtol=0) for _, w, _ in shared) for _, v, _ in shared]
        rkey, rvol, _ = shared[int(np.argmax(agree))]
        for key, vol, where in shared:
            if not np.allclose(vol.affine, rvol.affine, atol=AFFINE_ATOL, rtol=0):
                diff = float(np.abs(vol.affine - rvol.affine).max())
                raise DataError(
                    where,
                    f"affine of {key!r} differs from that of {rkey!r} by up to {diff:.4g} "
                    f"(tolerance {AFFINE_ATOL}); declare it own-grid or resample it",
                )

    def check_voxels(self, keys: Iterable[str] | None = None) -> None:
        """Read every volume once to check values (finite images, integer labels).

        Raises:
            DataError: the first bad volume, naming its file.
        """
        for key in sorted(keys if keys is not None else self.modalities):
            self[key].array  # noqa: B018 - reading applies the checks

    def select(self, keys: Iterable[str]) -> Case:
        """A case with only ``keys`` (missing ones raise)."""
        keys = list(keys)
        self.require(keys)
        return Case(
            self.id,
            self.subject,
            {k: self.modalities[k] for k in keys},
            own_grid=self.own_grid & set(keys),
            meta=dict(self.meta),
            where=self.where,
        )

    def __repr__(self) -> str:
        mods = ", ".join(sorted(self.modalities))
        return f"Case(id={self.id!r}, subject={self.subject!r}, modalities=[{mods}])"


def cases_by_subject(cases: Iterable[Case]) -> Mapping[str, list[Case]]:
    """Group cases by subject id, preserving order."""
    out: dict[str, list[Case]] = {}
    for case in cases:
        out.setdefault(case.subject, []).append(case)
    return out
