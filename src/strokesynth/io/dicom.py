"""DICOM in: find the CT series of a folder tree, build NIfTI volumes from their tags, write a case.

``strokesynth import DICOM_DIR --out DATASET`` reads every file of the tree (any names, any depth,
mixed series) with pydicom (headers first, pixels only for the series kept), groups the images by
Series Instance UID and recognises each series by its tags, not its file names:

- **CTP**: a series whose slice positions each hold more than one image (time points). Images of
  one position are ordered by Temporal Position Identifier, else Acquisition Time (Content Time),
  else Instance Number; frame k is the k-th image of every position, its time the mean
  Acquisition Time of those images, relative to the first frame. Every position must hold the same
  number of images. The times go into the sidecar (``FrameTimesStart``); the analysis resamples
  uneven frames onto a uniform grid (docs/perfusion.md, "Frame timing").
- **perfusion maps**: a series whose description or Image Type names CBF, CBV, MTT or Tmax.
- **CTA**: one time point with a Contrast/Bolus Agent; **NCCT**: one time point without one (the
  series with most slices when there are several; the others are named in the notes).

Geometry comes from Image Orientation/Position (Patient): slices sorted by their position along
the slice normal (not by file name or instance number), the affine converted from DICOM's LPS to
NIfTI's RAS, so oblique and gantry-tilted stacks keep their true orientation. Rescale slope and
intercept are applied (HU). An Enhanced (multi-frame) CT object is split into its frames by its
functional groups (plane position and orientation, pixel measures, rescale, frame content's time
and temporal index).
pydicom reads the files (no hand-written parsing); a compressed transfer syntax needs a decoder
plugin (``pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg``), and the error says which.

Each study (Study Instance UID) becomes one case of a ``plain`` data set: ``ct``, ``ctp``, ``cta``
and maps as ``.nii.gz`` with a JSON sidecar each (series description and UID, manufacturer, kVp,
slice count; for the CTP the frame times).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth.errors import ConfigError, DataError
from strokesynth.io.nifti import write_array

#: positions closer than this (mm, along the slice normal) are the same slice
POSITION_TOLERANCE_MM = 0.01
_MAP_NAMES = {"cbf": r"\bcbf\b", "cbv": r"\bcbv\b", "mtt": r"\bmtt\b", "tmax": r"\bt[\s_-]?max\b"}
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def pydicom_module():
    """pydicom, or a one-line error saying how to install it."""
    try:
        import pydicom
    except ImportError:
        raise ConfigError("dicom", "DICOM needs pydicom: pip install 'strokesynth[dicom]' (or pip install pydicom)") from None
    return pydicom


def _seconds(value: Any) -> float | None:
    """A DICOM TM (HHMMSS.FFFFFF) as seconds since midnight, or None."""
    text = str(value or "").strip()
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d+))?", text)
    if not m:
        return None
    h, mi, s, frac = m.groups()
    return int(h) * 3600 + int(mi or 0) * 60 + int(s or 0) + (float(f"0.{frac}") if frac else 0.0)


@dataclass
class Image:
    """One DICOM image's header facts."""

    path: Path
    position: np.ndarray
    orientation: np.ndarray
    rows: int
    columns: int
    spacing: tuple[float, float]
    time: float | None
    temporal: int | None
    number: int
    syntax: str
    sop: str = ""
    frame: int | None = None  # the frame of an enhanced (multi-frame) object, else None
    rescale: tuple[float, float] | None = None  # per-frame (slope, intercept) of an enhanced object


@dataclass
class Series:
    """The images of one Series Instance UID and what the series is."""

    uid: str
    study: str
    description: str
    image_type: str
    contrast: bool
    facts: dict[str, Any]
    images: list[Image] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"series {self.uid} ({self.description or 'no description'})"


def scan(root: str | Path) -> tuple[list[Series], list[str]]:
    """Every CT image series under ``root`` (headers only) and notes on the files left out.

    Raises:
        DataError: the folder holds only a DICOMDIR, or no DICOM image at all.
    """
    pydicom = pydicom_module()
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a folder of DICOM files")
    series: dict[str, Series] = {}
    notes: list[str] = []
    dicomdir = skipped = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - pydicom raises many kinds for a file that is not DICOM
            skipped += 1
            continue
        sop_class = str(getattr(ds, "SOPClassUID", "") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
        if sop_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
            dicomdir += 1
            continue
        enhanced = sop_class == _ENHANCED_CT or "PerFrameFunctionalGroupsSequence" in ds
        if getattr(ds, "Modality", "") != "CT" or not enhanced and ("ImagePositionPatient" not in ds
                                                                    or "PixelSpacing" not in ds):
            skipped += 1
            continue
        uid = str(ds.SeriesInstanceUID)
        if uid not in series:
            image_type = "\\".join(str(v) for v in (ds.get("ImageType") or []))
            series[uid] = Series(uid, str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesDescription", "")),
                                 image_type, bool(str(ds.get("ContrastBolusAgent", "")).strip()),
                                 {"SeriesDescription": str(ds.get("SeriesDescription", "")), "SeriesInstanceUID": uid,
                                  "Manufacturer": str(ds.get("Manufacturer", "")),
                                  "KVP": float(ds.KVP) if ds.get("KVP") not in (None, "") else None,
                                  "PatientID": str(ds.get("PatientID", "")), "StudyDate": str(ds.get("StudyDate", ""))})
        if enhanced:
            series[uid].images.extend(_enhanced_frames(ds, path))
            continue
        series[uid].images.append(Image(
            path, np.array([float(v) for v in ds.ImagePositionPatient]),
            np.array([float(v) for v in ds.ImageOrientationPatient]), int(ds.Rows), int(ds.Columns),
            (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])),
            _seconds(ds.get("AcquisitionTime")) if ds.get("AcquisitionTime") else _seconds(ds.get("ContentTime")),
            int(ds.TemporalPositionIdentifier) if ds.get("TemporalPositionIdentifier") not in (None, "") else None,
            int(ds.get("InstanceNumber") or 0), str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")),
            str(ds.get("SOPInstanceUID", ""))))
    if not series:
        if dicomdir:
            raise DataError(root, "holds a DICOMDIR index but no CT image files: copy the image files it lists "
                                  "into the folder (or point at the folder that holds them)")
        raise DataError(root, f"no CT image series found ({skipped} file(s) were not CT images)")
    if skipped:
        notes.append(f"{skipped} file(s) left out (not DICOM, not CT, or without a position)")
    return list(series.values()), notes


def _group(ds: Any, index: int, name: str) -> Any:
    """Item ``name`` of frame ``index``'s functional groups (per-frame first, then shared), or None."""
    for groups in (ds.PerFrameFunctionalGroupsSequence[index], (ds.get("SharedFunctionalGroupsSequence") or [None])[0]):
        if groups is not None and name in groups:
            return groups[name][0]
    return None


def _datetime_seconds(value: Any) -> float | None:
    """The time of day (s) of a DICOM DT (YYYYMMDDHHMMSS.FFFFFF), or None."""
    text = str(value or "").strip()
    return _seconds(text[8:].split("+")[0].split("-")[0]) if len(text) > 8 else None


def _enhanced_frames(ds: Any, path: Path) -> list[Image]:
    """The frames of an enhanced (multi-frame) CT object as images: position, orientation and pixel
    spacing from the (per-frame or shared) functional groups, the time from Frame Content's
    Frame Acquisition DateTime, the temporal index from its Temporal Position Index."""
    frames = []
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    for i in range(int(ds.NumberOfFrames)):
        position = _group(ds, i, "PlanePositionSequence")
        orientation = _group(ds, i, "PlaneOrientationSequence")
        measures = _group(ds, i, "PixelMeasuresSequence")
        if position is None or orientation is None or measures is None:
            raise DataError(path, f"enhanced CT frame {i + 1} has no plane position, orientation or pixel measures")
        content = _group(ds, i, "FrameContentSequence")
        transform = _group(ds, i, "PixelValueTransformationSequence")
        when = _datetime_seconds(content.get("FrameAcquisitionDateTime")) if content is not None else None
        temporal = content.get("TemporalPositionIndex") if content is not None else None
        frames.append(Image(
            path, np.array([float(v) for v in position.ImagePositionPatient]),
            np.array([float(v) for v in orientation.ImageOrientationPatient]), int(ds.Rows), int(ds.Columns),
            (float(measures.PixelSpacing[0]), float(measures.PixelSpacing[1])), when,
            int(temporal) if temporal not in (None, "") else None, i + 1, syntax, str(ds.SOPInstanceUID), i,
            (float(transform.get("RescaleSlope", 1.0)), float(transform.get("RescaleIntercept", 0.0)))
            if transform is not None else None))
    return frames


def kind(series: Series, n_positions: int) -> str:
    """``ctp``, a map key, ``cta`` or ``ct``, from the series' tags."""
    if len(series.images) > n_positions:
        return "ctp"
    text = f"{series.description} {series.image_type}".lower()
    for key, pattern in _MAP_NAMES.items():
        if re.search(pattern, text):
            return key
    return "cta" if series.contrast else "ct"


def geometry(series: Series) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """``(normal, positions along it per image, sorted unique slice positions)``; checks that every
    image shares rows, columns, pixel spacing and orientation (else two series share one UID)."""
    first = series.images[0]
    for im in series.images[1:]:
        if (im.rows, im.columns) != (first.rows, first.columns) or not np.allclose(im.spacing, first.spacing, atol=1e-4) \
                or not np.allclose(im.orientation, first.orientation, atol=1e-4):
            raise DataError(im.path, f"{series.where} mixes images of another geometry ({im.rows}x{im.columns} at "
                                     f"{im.spacing} vs {first.rows}x{first.columns} at {first.spacing}, or another "
                                     "orientation): two series under one Series Instance UID")
    row, col = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, col)
    along = np.array([float(im.position @ normal) for im in series.images])
    unique: list[float] = []
    for v in np.sort(along):
        if not unique or v - unique[-1] > POSITION_TOLERANCE_MM:
            unique.append(float(v))
    return normal, along, unique


def _affine(series: Series, slices: list[Image]) -> np.ndarray:
    """RAS affine of a stack ``slices`` (sorted along the normal); x runs along the DICOM rows."""
    first = slices[0]
    row, col = first.orientation[:3], first.orientation[3:]
    dy, dx = first.spacing  # PixelSpacing: between rows, between columns
    lps = np.eye(4)
    lps[:3, 0] = row * dx
    lps[:3, 1] = col * dy
    if len(slices) > 1:
        lps[:3, 2] = (slices[-1].position - first.position) / (len(slices) - 1)
    else:
        lps[:3, 2] = np.cross(row, col)
    lps[:3, 3] = first.position
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


_DECODED: dict[Path, tuple[Any, np.ndarray]] = {}


def _decoded(pydicom, path: Path) -> tuple[Any, np.ndarray]:
    """The dataset and decoded pixels of a file; the last multi-frame file is kept (its frames are
    read one after another)."""
    if path in _DECODED:
        return _DECODED[path]
    ds = pydicom.dcmread(path)
    out = (ds, ds.pixel_array)
    if int(ds.get("NumberOfFrames") or 1) > 1:
        _DECODED.clear()
        _DECODED[path] = out
    return out


def _pixels(pydicom, image: Image, where: str) -> np.ndarray:
    """``(columns, rows)`` float32 with rescale applied."""
    try:
        ds, raw = _decoded(pydicom, image.path)
    except Exception as exc:  # noqa: BLE001 - pydicom's decoders raise RuntimeError/NotImplementedError/...
        syntax = pydicom.uid.UID(image.syntax) if image.syntax else None
        if syntax is not None and syntax.is_compressed:
            try:
                from pydicom.pixels import get_decoder

                available = get_decoder(syntax).is_available
            except Exception:  # noqa: BLE001 - a syntax pydicom has no decoder for at all
                available = False
            if not available:
                raise DataError(image.path, f"{where}: compressed transfer syntax {syntax.name} and no decoder "
                                            "installed (pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, "
                                            "or python-gdcm)") from None
            raise DataError(image.path, f"{where}: compressed transfer syntax {syntax.name}: the pixel data cannot "
                                        f"be decoded ({str(exc).splitlines()[0][:120]})") from None
        raise DataError(image.path, f"{where}: pixel data cannot be read ({str(exc).splitlines()[0][:120]})") from None
    if image.frame is not None:
        raw = raw[image.frame] if raw.ndim == 3 else raw
        slope, inter = image.rescale or (1.0, 0.0)
    else:
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        inter = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return (raw.astype(np.float32) * np.float32(slope) + np.float32(inter)).T


def _frames(series: Series, along: np.ndarray, unique: list[float]) -> list[list[Image]]:
    """The images grouped into time points ``[frame][slice]`` (see the module docstring)."""
    slot = np.searchsorted(np.array(unique) + POSITION_TOLERANCE_MM, along)
    per_position: list[list[Image]] = [[] for _ in unique]
    for im, k in zip(series.images, slot, strict=True):
        per_position[int(k)].append(im)
    counts = [len(v) for v in per_position]
    if len(set(counts)) > 1:
        most = max(set(counts), key=counts.count)
        odd = [f"{unique[k]:.2f} mm ({c})" for k, c in enumerate(counts) if c != most][:4]
        raise DataError(series.where, f"slice positions hold different numbers of images (most {most}; "
                                      f"{', '.join(odd)}): a slice missing at a time point, or time points at "
                                      "different slice positions")

    def order(im: Image) -> tuple:
        return (im.temporal if im.temporal is not None else -1, im.time if im.time is not None else -1.0, im.number)

    for images in per_position:
        images.sort(key=order)
    return [[images[t] for images in per_position] for t in range(counts[0])]


@dataclass
class ImportedStudy:
    """What :func:`import_study` found and wrote."""

    case: str
    keys: dict[str, str]
    notes: list[str]
    sources: dict[str, list[Path]] = field(default_factory=dict)


def read_series(series: Series) -> tuple[str, np.ndarray, np.ndarray, dict[str, Any], list[Image]]:
    """``(key, array, affine, sidecar, slices)`` of one series: ``(X, Y, Z)`` float32, or ``(X, Y, Z,
    T)`` int16 HU for a CTP (Fortran order: written without a copy); ``slices`` are the images of
    the (first) time point in z order."""
    pydicom = pydicom_module()
    normal, along, unique = geometry(series)
    key = kind(series, len(unique))
    frames = _frames(series, along, unique) if key == "ctp" else [sorted(series.images, key=lambda im: im.position @ normal)]
    affine = _affine(series, frames[0])
    nx, ny = series.images[0].columns, series.images[0].rows
    sidecar = dict(series.facts, Slices=len(unique))
    if key != "ctp":
        array = np.stack([_pixels(pydicom, im, series.where) for im in frames[0]], axis=2)
        sidecar["SourceSOPInstanceUIDs"] = [im.sop for im in frames[0]]
        stamps = [im.time for im in frames[0] if im.time is not None]
        if stamps:
            sidecar["AcquisitionTimeOfDay_s"] = round(float(min(stamps)), 4)
        return key, array, affine, sidecar, frames[0]
    array = np.empty((nx, ny, len(unique), len(frames)), np.int16, order="F")
    times = []
    for t, frame in enumerate(frames):
        for z, im in enumerate(frame):
            array[:, :, z, t] = np.clip(np.rint(_pixels(pydicom, im, series.where)), -32768, 32767)
        stamps = [im.time for im in frame if im.time is not None]
        times.append(float(np.mean(stamps)) if len(stamps) == len(frame) else None)
    if any(t is None for t in times):
        raise DataError(series.where, "some CTP images have no Acquisition Time or Content Time: the frame times are unknown")
    rel = np.array(times) - times[0]
    if np.any(np.diff(rel) <= 0):
        raise DataError(series.where, "the CTP time points are not strictly increasing in Acquisition Time")
    sidecar.update({"FrameTimesStart": [round(float(v), 4) for v in rel], "FrameTimesUnit": "s",
                    "Frames": len(frames), "AcquisitionTimeOfDay_s": round(float(times[0]), 4)})
    return key, array, affine, sidecar, frames[0]


def import_study(root: str | Path, out_case: str | Path,
                 scanned: tuple[list[Series], list[str]] | None = None) -> ImportedStudy:
    """Read the one study under ``root`` and write it to the case folder ``out_case`` (plain layout);
    ``scanned`` is :func:`scan`'s result when the caller already has it (headers are read once)."""
    found, notes = scanned if scanned is not None else scan(root)
    notes = list(notes)
    studies = sorted({s.study for s in found})
    if len(studies) > 1:
        raise DataError(root, f"holds {len(studies)} studies; import one study folder at a time")
    by_key: dict[str, list[Series]] = {}
    for series in found:
        _, _, unique = geometry(series)
        by_key.setdefault(kind(series, len(unique)), []).append(series)
    if "ct" not in by_key and "ctp" not in by_key:
        raise DataError(root, "no non-contrast CT and no CTP series among the CT series found")
    out_case = Path(out_case)
    written: dict[str, str] = {}
    sources: dict[str, list[Path]] = {}
    try:
        _write_series_of(by_key, out_case, notes, written, sources)
    finally:
        _DECODED.clear()
    return ImportedStudy(out_case.name, written, notes, sources)


def _write_series_of(by_key: dict[str, list[Series]], out_case: Path, notes: list[str], written: dict[str, str],
                     sources: dict[str, list[Path]]) -> None:
    """Write the series taken for each key (the one with most images) to ``out_case``."""
    for key, group in sorted(by_key.items()):
        group.sort(key=lambda s: -len(s.images))
        for extra in group[1:]:
            notes.append(f"{key}: {extra.where} left out ({len(extra.images)} images; {group[0].where} taken)")
        k, array, affine, sidecar, slices = read_series(group[0])
        dt = float(np.median(np.diff(sidecar["FrameTimesStart"]))) if k == "ctp" and array.shape[3] > 1 else None
        write_array(array, affine, out_case / f"{k}.nii.gz", dt=dt, sidecar=sidecar)
        written[k] = group[0].uid
        sources[k] = [im.path for im in slices]


def looks_like_dicom(folder: str | Path, probe: int = 50) -> bool:
    """Whether ``folder`` holds DICOM files (the ``DICM`` preamble of Part 10 files, or a DICOMDIR)
    among the first ``probe`` files of its tree, and no NIfTI file."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    seen = 0
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        if path.name.endswith((".nii", ".nii.gz")):
            return False
        try:
            with path.open("rb") as fh:
                head = fh.read(132)
        except OSError:
            continue
        if head[128:132] == b"DICM" or path.name.upper() == "DICOMDIR":
            return True
        seen += 1
        if seen >= probe:
            break
    return False


def case_name(found: list[Series]) -> str:
    """A case name from the study's patient ID and date (``case_1`` when they are empty)."""
    facts = found[0].facts
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{facts['PatientID']}_{facts['StudyDate']}").strip("_")
    return name or "case_1"


@contextmanager
def imported(source: str | Path) -> Iterator[tuple[Path, ImportedStudy]]:
    """A temporary plain data set holding the DICOM study under ``source`` (removed afterwards) and
    what the import found: how ``predict --input DICOM_DIR`` reads a study directly."""
    scanned = scan(source)
    tmp = Path(tempfile.mkdtemp(prefix="strokesynth-dicom-"))
    try:
        study = import_study(source, tmp / case_name(scanned[0]), scanned)
        yield tmp, study
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
