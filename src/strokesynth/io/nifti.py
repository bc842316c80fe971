"""NIfTI reading and writing through nibabel, with strokesynth's dtype and error policy.

Dtype policy (the same for every layout):

- In memory, images are float32 (NIfTI scaling applied) and labels are uint8 (int32 when a
  label exceeds 255). Label files must hold non-negative integers (float files with integral
  values are accepted).
- On disk, a writer keeps the dtype the volume was read with (``Volume.disk_dtype``) when the
  values fit it exactly (an int16 CT stays int16, a float64 DWI stays float64); otherwise images
  are written as float32 and labels as uint8/int32 (a label's integer dtype is kept too).
- The affine is written to both sform and qform (code 1, scanner) and read back from the sform.
  NIfTI stores it in float32, so a read -> write -> read cycle reproduces it bit for bit.
- Spatial units are mm; a 4D series stores its frame interval ``dt`` in seconds in pixdim[4].
- Trailing singleton axes beyond the third are dropped on read ((x, y, z, 1) -> (x, y, z)).

Every failure (missing, truncated or non-NIfTI file, wrong dimensionality, NaN/Inf) raises a
:class:`~strokesynth.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError
from nibabel.volumeutils import apply_read_scaling

from strokesynth._fs import atomic_file
from strokesynth.data.volume import Kind, Volume, coerce_array
from strokesynth.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")

_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError, ImageFileError, HeaderDataError)

#: Bytes read at a time when a compressed file's stream is verified without keeping it.
_CHUNK = 1 << 22

_TIME_UNIT_SECONDS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_SPACE_UNIT_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3}


def is_nifti_name(path: str | os.PathLike) -> bool:
    """Whether the file name ends in ``.nii`` or ``.nii.gz``."""
    return str(path).endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    """``"dwi.nii.gz"`` -> ``"dwi"``."""
    for suf in NIFTI_SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


class NiftiSource:
    """Reads one NIfTI file's voxels on demand (see :class:`~strokesynth.data.volume.VolumeSource`).

    Only the header is parsed at construction. ``read`` applies the dtype policy and checks
    that the values are finite; ``read_slab`` reads a z-range, which for uncompressed ``.nii``
    touches only those bytes.

    A ``.nii.gz`` is verified whole the first time its voxels are used: the gzip CRC-32 and
    length of every member are checked (nibabel alone reads only the bytes it needs, so two
    flipped bytes in the deflate stream would go unseen). ``read`` does it in the same pass
    that fills the array; ``read_slab`` streams the file once in 4 MiB chunks first.
    """

    def __init__(self, path: Path, image: nib.Nifti1Image, shape: tuple[int, ...], kind: Kind):
        self.path = path
        self._image = image
        self.shape = shape
        self.kind = kind
        self._verified = not str(path).endswith(".gz")

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw)
        proxy = self._image.dataobj
        scaled = (getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)) != (1.0, 0.0)
        if self.kind == "label" and scaled and raw.dtype.kind == "f" and raw.size:
            # a mask stored as integers with a scale (ISLES'24: 0/65535 x 1.5259e-5): the products
            # miss the integers by float rounding only; beyond 1e-3 it is not a label map
            rounded = np.round(raw)
            if np.all(np.isfinite(raw)) and float(np.abs(raw - rounded).max()) < 1e-3:
                raw = rounded
        return coerce_array(raw, self.kind, str(self.path))

    def _get(self, index: tuple) -> np.ndarray:
        try:
            raw = self._image.dataobj[index]
        except _READ_ERRORS as exc:
            raise self._corrupt(exc) from None
        return raw

    def _corrupt(self, exc: BaseException) -> DataError:
        return DataError(self.path, f"cannot read voxel data, file truncated or corrupt ({_why(exc)})")

    def _read_gz_raw(self) -> np.ndarray:
        """The stored array of a ``.nii.gz`` (disk dtype, Fortran order, native byte order), streamed
        into one preallocated array in :data:`_CHUNK` pieces in a pass that also checks the gzip CRC
        and length: the peak is the array itself (nibabel's reader holds the bytes and the array,
        twice the size: 3.3 GB for a 1.7 GB CTP)."""
        dtype = self._image.header.get_data_dtype()
        raw = np.empty(self._image.shape, dtype=dtype, order="F")
        flat = memoryview(raw.reshape(-1, order="F")).cast("B")
        with gzip.open(self.path, "rb") as fh:
            fh.seek(int(self._image.dataobj.offset))
            pos = 0
            while pos < len(flat):
                got = fh.readinto(flat[pos:pos + _CHUNK])
                if not got:
                    raise EOFError(f"expected {len(flat)} bytes of voxel data, got {pos}")
                pos += got
            _drain(fh)
        self._verified = True
        if not dtype.isnative:
            raw.byteswap(inplace=True)
            raw = raw.view(dtype.newbyteorder("="))
        return raw

    def _read_gz_verified(self) -> np.ndarray:
        """The whole array of a ``.nii.gz`` in one pass that also checks the gzip CRC and length."""
        try:
            raw = self._read_gz_raw()
            proxy = self._image.dataobj  # nibabel moves the file's scaling here (the header in memory says NaN)
            out = apply_read_scaling(raw, proxy.slope, proxy.inter)
        except _READ_ERRORS as exc:
            raise self._corrupt(exc) from None
        self._verified = True
        return out

    def verify(self) -> None:
        """Stream a ``.nii.gz`` once to check its CRC-32 and length (no-op if done or uncompressed).

        Raises:
            DataError: the stream is corrupt or truncated.
        """
        if self._verified:
            return
        try:
            with gzip.open(self.path, "rb") as fh:
                _drain(fh)
        except _READ_ERRORS as exc:
            raise self._corrupt(exc) from None
        self._verified = True

    def read(self) -> np.ndarray:
        if not self._verified:
            return self._finish(np.reshape(self._read_gz_verified(), self.shape))
        raw = self._get(tuple(slice(None) for _ in self._image.shape))
        return self._finish(np.reshape(raw, self.shape))

    def read_stored(self) -> tuple[np.ndarray, float, float]:
        """The whole array in the dtype it has on disk, with its scaling not applied: ``(raw, slope,
        inter)``, the values being ``raw * slope + inter`` (an int16 CTP stays int16: half the memory
        of float32). Verified like :meth:`read`; float data is checked finite.
        """
        if self._image.dataobj.dtype.kind not in "iuf":
            return self.read(), 1.0, 0.0
        try:
            if not self._verified:
                raw = self._read_gz_raw()
            else:
                raw = np.asarray(self._image.dataobj.get_unscaled())
        except _READ_ERRORS as exc:
            raise self._corrupt(exc) from None
        raw = np.reshape(raw, self.shape)
        slope, inter = (float(getattr(self._image.dataobj, "slope", 1.0)),
                        float(getattr(self._image.dataobj, "inter", 0.0)))
        if raw.dtype.kind == "f":
            bad = int(raw.size - np.count_nonzero(np.isfinite(raw)))
            if bad:
                raise DataError(self.path, f"contains {bad} NaN/Inf voxel(s)")
        return raw, slope, inter

    def read_slab(self, z: slice | int) -> np.ndarray:
        self.verify()
        extra = len(self._image.shape) - 3
        raw = self._get((slice(None), slice(None), z) + (slice(None),) * extra)
        target = self.shape[:2] + (() if isinstance(z, int) else (np.shape(raw)[2],)) + self.shape[3:]
        return self._finish(np.reshape(raw, target))


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar's path beside a NIfTI file (BIDS: ``x.nii.gz`` -> ``x.json``)."""
    path = Path(path)
    return path.with_name(strip_nifti_suffix(path.name) + ".json")


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The JSON sidecar beside the NIfTI ``path`` (None when there is none).

    Raises:
        DataError: the sidecar exists but is not a JSON object.
    """
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(side, f"sidecar is not valid JSON ({_why(exc)})") from None
    if not isinstance(data, dict):
        raise DataError(side, f"sidecar holds a JSON {type(data).__name__}, not an object")
    return data


def _drain(fh: gzip.GzipFile) -> None:
    """Read a gzip stream to its end in :data:`_CHUNK` pieces: gzip checks each member's CRC-32 and
    length there (raising ``BadGzipFile``)."""
    while fh.read(_CHUNK):
        pass


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]


def read_volume(
    path: str | os.PathLike,
    *,
    kind: Kind = "image",
    ndim: int | None = None,
    meta: dict | None = None,
) -> Volume:
    """Open a NIfTI file as a lazy :class:`Volume` (only the header is read now).

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        kind: ``"image"`` or ``"label"`` (labels are checked to be non-negative integers).
        ndim: 3 or 4 to require that dimensionality (after dropping trailing singleton axes).
        meta: facts to attach (e.g. a JSON sidecar).

    Raises:
        DataError: the file is missing, not NIfTI, truncated, or has the wrong dimensionality.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if not path.is_file():
        raise DataError(path, "not a file")
    if not is_nifti_name(path):
        raise DataError(path, "not a NIfTI file (expected .nii or .nii.gz)")
    try:
        image = nib.load(str(path))
    except HeaderDataError as exc:  # nibabel refuses e.g. a valid slope with a NaN/Inf intercept here
        raise DataError(path, f"voxel scaling is invalid ({_why(exc)})") from None
    except _READ_ERRORS as exc:
        raise DataError(path, f"not a readable NIfTI file ({_why(exc)})") from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataError(path, f"not a NIfTI-1/2 image (nibabel read it as {type(image).__name__})")
    header = image.header
    shape = tuple(int(s) for s in image.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) < 3:
        raise DataError(path, f"{len(shape)}D image of shape {shape}; expected a 3D volume (x, y, z)")
    if len(shape) > 4:
        raise DataError(path, f"{len(shape)}D image of shape {shape}; at most 4D (x, y, z, t) is supported")
    if ndim is not None and len(shape) != ndim:
        want = "3D (x, y, z)" if ndim == 3 else "4D (x, y, z, t)"
        raise DataError(path, f"expected a {want} volume, got {len(shape)}D of shape {shape}")
    if min(shape) < 1:
        raise DataError(path, f"empty image of shape {shape}")
    _check_header(path, image)
    _check_size(path, image)

    space_unit, time_unit = header.get_xyzt_units()
    scale = _SPACE_UNIT_MM.get(space_unit, 1.0)
    affine = np.asarray(image.affine, dtype=np.float64)
    if scale != 1.0:
        affine[:3, :] *= scale
    dt = None
    if len(shape) == 4:
        step = float(header.get_zooms()[3]) if len(header.get_zooms()) > 3 else 0.0
        dt = step * _TIME_UNIT_SECONDS.get(time_unit, 1.0) if step > 0 else None
    source = NiftiSource(path, image, shape, kind)
    return Volume.from_source(
        source,
        affine,
        kind=kind,
        dt=dt,
        spatial_unit="mm",
        disk_dtype=header.get_data_dtype(),
        meta=meta,
    )


def _check_header(path: Path, image: nib.Nifti1Image) -> None:
    """Refuse what nibabel would read without complaint but wrongly: voxel types strokesynth
    cannot hold as real numbers (complex, RGB) and a single-file image whose voxels would start
    inside its own header (invalid scaling nibabel refuses itself, see :func:`read_volume`)."""
    header = image.header
    dtype = header.get_data_dtype()
    if dtype.kind not in "iufb":
        what = "complex" if dtype.kind == "c" else "RGB/structured" if dtype.kind == "V" else str(dtype)
        raise DataError(path, f"voxel type {what} ({dtype}) is not supported; images must hold real numbers")
    magic = bytes(header["magic"]) if "magic" in header else b""
    if magic.startswith((b"n+1", b"n+2")):
        least = 352 if magic.startswith(b"n+1") else 544
        offset = int(getattr(image.dataobj, "offset", header["vox_offset"]))  # the header in memory says 0
        if offset < least:
            raise DataError(path, f"vox_offset {offset} lies inside the header (a single-file NIfTI's voxels "
                                  f"start at byte {least} or later)")


def _check_size(path: Path, image: nib.Nifti1Image) -> None:
    """Catch a truncated uncompressed ``.nii`` from its size alone (compressed ones fail on read)."""
    if str(path).endswith(".gz"):
        return
    header = image.header
    need = int(image.dataobj.offset) + int(np.prod(image.shape)) * header.get_data_dtype().itemsize
    have = path.stat().st_size
    if have < need:
        raise DataError(path, f"file truncated: {have} bytes, header needs {need}")


def _disk_dtype(volume: Volume, array: np.ndarray) -> np.dtype:
    want = volume.disk_dtype
    if volume.kind == "label":
        if want is not None and want.kind in "iu" and (not array.size or array.max() <= np.iinfo(want).max):
            return want
        return array.dtype
    if want is None:
        return np.dtype(np.float32)
    if want.kind == "f":
        return want
    if want.kind in "iu":
        info = np.iinfo(want)
        if array.size and (array.min() < info.min or array.max() > info.max):
            return np.dtype(np.float32)
        if np.all(array == np.round(array)):
            return want
    return np.dtype(np.float32)


def write_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) atomically, with its affine.

    Returns:
        The path written.
    """
    path = Path(path)
    if not is_nifti_name(path):
        raise DataError(path, "output name must end in .nii or .nii.gz")
    array = volume.array
    dtype = _disk_dtype(volume, array)
    data = array.astype(dtype, copy=False)
    image = nib.Nifti1Image(data, volume.affine, dtype=dtype)
    header = image.header
    header.set_data_dtype(dtype)
    header.set_sform(volume.affine, code=1)
    header.set_qform(volume.affine, code=1)
    header.set_xyzt_units("mm", "sec")
    if volume.ndim == 4 and volume.dt:
        zooms = list(header.get_zooms())
        zooms[3] = volume.dt
        header.set_zooms(zooms)
    header["scl_slope"] = 1.0
    header["scl_inter"] = 0.0
    with atomic_file(path) as tmp:
        nib.save(image, str(tmp))
    return path


def write_array(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, *, dt: float | None = None,
                sidecar: dict | None = None) -> Path:
    """Write an integer or float array as it is (no float32 copy: a 1.7 GB int16 4D CTP stays 1.7 GB),
    atomically, with the affine in sform and qform, ``dt`` (s) in pixdim[4] of a 4D array and an
    optional JSON sidecar beside it (:func:`sidecar_path`).

    Args:
        array: ``(X, Y, Z)`` or ``(X, Y, Z, T)``; Fortran order avoids a copy inside nibabel.
        affine: ``(4, 4)`` voxel -> RAS mm.
    """
    path = Path(path)
    if not is_nifti_name(path):
        raise DataError(path, "output name must end in .nii or .nii.gz")
    image = nib.Nifti1Image(array, affine, dtype=array.dtype)
    header = image.header
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    if array.ndim == 4 and dt:
        zooms = list(header.get_zooms())
        zooms[3] = dt
        header.set_zooms(zooms)
    header["scl_slope"] = 1.0
    header["scl_inter"] = 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        nib.save(image, str(tmp))
    if sidecar is not None:
        from strokesynth._fs import write_json_atomic

        write_json_atomic(sidecar_path(path), sidecar)
    return path
