"""`Volume`: an image or label array with its affine, loaded lazily.

A Volume is storage-agnostic: it either holds an array in memory or a *source* (see
:class:`VolumeSource`) that reads the array when asked. Readers in :mod:`strokesynth.io` build
Volumes with sources, so shape, affine and header facts are known without reading voxels, and
a data set of a hundred ISLES-sized cases costs only its headers in memory.

Axis convention: arrays are (x, y, z) or (x, y, z, t) in voxel order, as NIfTI stores them;
``affine`` maps voxel indices to scanner (RAS+) millimetres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from strokesynth.errors import DataError

Kind = Literal["image", "label"]


class VolumeSource(Protocol):
    """Something that can read a volume's voxels on demand (e.g. a NIfTI file)."""

    path: Path | None
    shape: tuple[int, ...]

    def read(self) -> np.ndarray:
        """Return the whole array (float32 for images, integers for labels), checked finite."""
        ...

    def read_slab(self, z: slice | int) -> np.ndarray:
        """Return ``array[:, :, z]`` (and all frames of a 4D array), reading as little as possible."""
        ...


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along x, y, z: the column norms of the 3x3 part of ``affine``."""
    a = np.asarray(affine, dtype=np.float64)
    return tuple(float(v) for v in np.sqrt((a[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]


class Volume:
    """A 3D (x, y, z) or 4D (x, y, z, t) array with its voxel-to-mm affine.

    Build one from memory with ``Volume(array, affine)``; readers build lazy ones with
    :meth:`from_source`. Reading ``.array`` of a lazy Volume reads the file every time (nothing
    is kept, so memory stays bounded); call :meth:`load` once to get an in-memory copy.

    Attributes:
        affine: (4, 4) float64, voxel index -> scanner mm.
        kind: ``"image"`` (float32 intensities) or ``"label"`` (non-negative integers).
        dt: seconds between frames of a 4D series; ``None`` for 3D volumes.
        spatial_unit: unit of the affine (always ``"mm"`` once read).
        disk_dtype: the dtype the voxels had on disk, kept so a writer can reproduce it.
        path: the file the volume came from, if any (used in error messages).
        meta: free-form facts (e.g. a BIDS JSON sidecar).
    """

    def __init__(
        self,
        array: np.ndarray | None,
        affine: np.ndarray,
        *,
        kind: Kind = "image",
        dt: float | None = None,
        spatial_unit: str = "mm",
        disk_dtype: np.dtype | None = None,
        path: Path | str | None = None,
        meta: dict[str, Any] | None = None,
        source: VolumeSource | None = None,
    ) -> None:
        where = str(path) if path is not None else "volume"
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise DataError(where, f"affine must be a finite 4x4 matrix, got shape {affine.shape}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise DataError(where, "affine is singular (zero voxel size or collapsed axes)")
        if kind not in ("image", "label"):
            raise ValueError(f"kind must be 'image' or 'label', not {kind!r}")
        if (array is None) == (source is None):
            raise ValueError("give exactly one of array or source")
        if array is not None:
            array = coerce_array(np.asarray(array), kind, where)
            shape = array.shape
        else:
            shape = tuple(source.shape)  # type: ignore[union-attr]
        if len(shape) not in (3, 4):
            raise DataError(where, f"expected a 3D (x, y, z) or 4D (x, y, z, t) array, got shape {shape}")
        if len(shape) == 4 and dt is not None and not dt > 0:
            raise DataError(where, f"time step must be positive, got {dt}")
        self._array = array
        self._source = source
        self.affine = affine
        self.kind = kind
        self.dt = float(dt) if dt is not None else None
        self.spatial_unit = spatial_unit
        self.disk_dtype = np.dtype(disk_dtype) if disk_dtype is not None else None
        self.path = Path(path) if path is not None else None
        self.meta = dict(meta or {})
        self._shape = tuple(int(s) for s in shape)

    @classmethod
    def from_source(cls, source: VolumeSource, affine: np.ndarray, **kwargs: Any) -> Volume:
        """A lazy Volume whose voxels are read from ``source`` on demand."""
        return cls(None, affine, source=source, path=source.path, **kwargs)

    # -- geometry ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape, (x, y, z) or (x, y, z, t)."""
        return self._shape

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(x, y, z) part of the shape."""
        return self._shape[:3]  # type: ignore[return-value]

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along x, y, z."""
        return spacing_from_affine(self.affine)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in ml (mm^3 / 1000)."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    @property
    def is_lazy(self) -> bool:
        """True while the voxels are still on disk."""
        return self._array is None

    def same_grid(self, other: Volume, atol: float = 1e-3) -> bool:
        """Whether both share (x, y, z) shape and affine (within ``atol`` mm / direction units)."""
        return self.spatial_shape == other.spatial_shape and bool(
            np.allclose(self.affine, other.affine, atol=atol, rtol=0)
        )

    # -- voxels -----------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        """The voxels: float32 for images, unsigned/signed integers for labels.

        For a lazy Volume this reads the source each time (see :meth:`load`).
        """
        if self._array is not None:
            return self._array
        return self._source.read()  # type: ignore[union-attr]

    def slab(self, z: slice | int) -> np.ndarray:
        """``array[:, :, z]`` (all frames of 4D), reading only that part where the file allows."""
        if self._array is not None:
            return self._array[:, :, z]
        return self._source.read_slab(z)  # type: ignore[union-attr]

    def stored(self) -> tuple[np.ndarray, float, float]:
        """The voxels in their most compact faithful form: ``(raw, slope, inter)`` with the values
        ``raw * slope + inter``. A lazy Volume whose source can (a NIfTI file) gives the array in its
        disk dtype (an int16 4D CTP: half the memory of :attr:`array`); otherwise ``(array, 1, 0)``.
        """
        if self._array is None and hasattr(self._source, "read_stored"):
            return self._source.read_stored()  # type: ignore[union-attr]
        return self.array, 1.0, 0.0

    def load(self) -> Volume:
        """An in-memory copy (reads the file once); returns ``self`` if already in memory."""
        if self._array is not None:
            return self
        return self.with_array(self.array)

    def with_array(self, array: np.ndarray, *, kind: Kind | None = None) -> Volume:
        """A new in-memory Volume with this one's affine, units, dt and path, holding ``array``.

        This is how predictions go back into the input's space: same grid, new voxels.
        """
        array = np.asarray(array)
        if array.shape[:3] != self.spatial_shape:
            raise DataError(
                self.path, f"array shape {array.shape} does not match the volume's grid {self.spatial_shape}"
            )
        return Volume(
            array,
            self.affine.copy(),
            kind=kind or self.kind,
            dt=self.dt if array.ndim == 4 else None,
            spatial_unit=self.spatial_unit,
            disk_dtype=self.disk_dtype,
            path=self.path,
            meta=self.meta,
        )

    def __repr__(self) -> str:
        src = f" path={str(self.path)!r}" if self.path is not None else ""
        state = "lazy" if self.is_lazy else "in memory"
        sp = "x".join(f"{s:.3g}" for s in self.spacing)
        dt = f" dt={self.dt:g}s" if self.dt else ""
        return f"Volume({self.kind}, shape={self.shape}, spacing={sp} mm{dt}, {state}{src})"


def coerce_array(array: np.ndarray, kind: Kind, where: str) -> np.ndarray:
    """Apply the dtype policy: float32 images, integer labels; reject NaN/Inf and bad labels."""
    if kind == "label":
        return label_array(array, where)
    if array.dtype.kind not in "iufb":
        raise DataError(where, f"voxel type {array.dtype} is not supported; images must hold real numbers")
    out = array.astype(np.float32, copy=False)
    if array.dtype.kind not in "iub":  # integers cannot hold NaN/Inf
        _check_finite(out, where)
    return out


def _check_finite(array: np.ndarray, where: str) -> None:
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise DataError(where, f"contains {bad} NaN/Inf voxel(s)")


def label_array(array: np.ndarray, where: str) -> np.ndarray:
    """Check that ``array`` holds non-negative integers and return it as uint8 (or int32).

    Float arrays are accepted when every value is integral (as many tools write masks as float).
    """
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        _check_finite(array, where)
        if not np.all(array == np.round(array)):
            raise DataError(where, "label map holds non-integer values (expected 0/1 or integer labels)")
    elif array.dtype.kind not in "iu":
        raise DataError(where, f"label map has unsupported dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise DataError(where, f"label map holds negative values (min {array.min()})")
    top = array.max() if array.size else 0
    if top > np.iinfo(np.int32).max:
        raise DataError(where, f"label map holds the value {top}, beyond the largest label {np.iinfo(np.int32).max}")
    return array.astype(np.uint8 if top <= 255 else np.int32, copy=False)
