"""Write a case as a DICOM study (one file per slice and time point): the fixture of the DICOM
import, and a way to hand a phantom case to any DICOM tool (needs ``pydicom``: ``pip install
strokesynth[dicom]``).

Each 3D volume of the case becomes a CT series (``ct``: the non-contrast CT; ``cta``: with a
contrast agent; ``cbf``/``cbv``/``mtt``/``tmax``: derived map series named in the series
description), and the 4D ``ctp`` one series of ``slices x frames`` images whose Acquisition
Time is the frame's time (``frame_times``, s, uneven if asked) and whose Temporal Position
Identifier is the frame's number. Geometry: Image Position/Orientation (Patient) in LPS from the
volume's RAS affine, so an oblique affine gives an oblique (tilted) stack. Pixel data are signed
16-bit with a rescale slope (maps: 0.01) and intercept, file names are random (a reader must not
rely on them) and nested two folders deep.
"""

from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path

import numpy as np

from strokesynth.data.case import Case
from strokesynth.errors import ConfigError
from strokesynth.io.dicom import pydicom_module as _pydicom

#: CT Image Storage
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Enhanced CT Image Storage (one multi-frame object per series)
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
#: finest slope of the derived map series (maps are stored as integers of 1/100 unit, coarser when
#: a map's largest value would not fit a signed 16-bit integer)
MAP_SLOPE = 0.01
MAP_KEYS = ("cbf", "cbv", "mtt", "tmax")


def lps_geometry(affine: np.ndarray) -> tuple[list[float], list[float], np.ndarray, np.ndarray]:
    """``(ImageOrientationPatient, PixelSpacing, position of slice 0, step between slices)`` in LPS
    from a RAS ``affine`` whose x axis runs along the DICOM rows (columns of the pixel array)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, np.float64)
    col_step, row_step, slice_step = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    dx, dy = float(np.linalg.norm(col_step)), float(np.linalg.norm(row_step))
    iop = [*(col_step / dx).tolist(), *(row_step / dy).tolist()]
    return iop, [dy, dx], lps[:3, 3].copy(), slice_step.copy()


def _base(pydicom, study: dict, series_uid: str, number: int, description: str) -> object:
    ds = pydicom.Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.Modality = "CT"
    ds.PatientID, ds.PatientName = study["patient"], study["patient"]
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study["uid"], study["date"], "120000"
    ds.PatientBirthDate, ds.PatientSex, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "", "O", "1", "", ""
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = series_uid, number, description
    ds.FrameOfReferenceUID = study["frame_of_reference"]
    ds.Manufacturer, ds.KVP = "strokesynth phantom", 80 if description.startswith("CTP") else 120
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def _save(pydicom, ds, folder: Path) -> None:
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    sub = folder / uuid.uuid4().hex[:2]
    sub.mkdir(parents=True, exist_ok=True)
    ds.save_as(sub / uuid.uuid4().hex[:12], enforce_file_format=True)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{12 + whole // 3600:02d}{whole // 60 % 60:02d}{whole % 60:02d}.{int(round((seconds - whole) * 1e6)):06d}"


def _write_series(pydicom, study: dict, folder: Path, array: np.ndarray, affine: np.ndarray, number: int,
                  description: str, *, slope: float = 1.0, contrast: bool = False,
                  times: np.ndarray | None = None, derived: bool = False) -> str:
    """One series: ``array`` ``(X, Y, Z)`` or ``(X, Y, Z, T)`` (``times`` per frame, s)."""
    iop, spacing, origin, step = lps_geometry(affine)
    series_uid = pydicom.uid.generate_uid()
    frames = array[..., None] if array.ndim == 3 else array
    for t in range(frames.shape[3]):
        for z in range(frames.shape[2]):
            ds = _base(pydicom, study, series_uid, number, description)
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.ImageType = ["DERIVED", "SECONDARY", description.upper()] if derived else ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.InstanceNumber = t * frames.shape[2] + z + 1
            ds.ImagePositionPatient = [float(v) for v in origin + z * step]
            ds.ImageOrientationPatient = [float(v) for v in iop]
            ds.PixelSpacing = [float(v) for v in spacing]
            ds.SliceThickness = float(np.linalg.norm(step))
            ds.Rows, ds.Columns = frames.shape[1], frames.shape[0]
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, 0.0, "HU" if slope == 1.0 else "US"
            when = 0.0 if times is None else float(times[t])
            ds.AcquisitionTime = ds.ContentTime = _clock(when)
            if times is not None:
                ds.TemporalPositionIdentifier = t + 1
                ds.NumberOfTemporalPositions = frames.shape[3]
            if contrast:
                ds.ContrastBolusAgent = "iodinated contrast"
            pixels = np.round(frames[:, :, z, t] / slope).astype(np.int16).T  # (rows, columns)
            ds.PixelData = np.ascontiguousarray(pixels).tobytes()
            _save(pydicom, ds, folder)
    return series_uid


def _write_enhanced(pydicom, study: dict, folder: Path, array: np.ndarray, affine: np.ndarray, number: int,
                    description: str, times: np.ndarray) -> str:
    """The 4D ``array`` ``(X, Y, Z, T)`` as one Enhanced CT object: frames time point after time
    point, position per frame, orientation, pixel measures and rescale shared, the time and temporal
    index of every frame in its Frame Content."""
    Dataset = pydicom.Dataset
    iop, spacing, origin, step = lps_geometry(affine)
    series_uid = pydicom.uid.generate_uid()
    ds = _base(pydicom, study, series_uid, number, description)
    ds.SOPClassUID = ENHANCED_CT_IMAGE_STORAGE
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.InstanceNumber, ds.ContrastBolusAgent = 1, "iodinated contrast"
    nx, ny, nz, nt = array.shape
    ds.Rows, ds.Columns, ds.NumberOfFrames = ny, nx, nz * nt
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [float(v) for v in spacing], float(np.linalg.norm(step))
    orientation = Dataset()
    orientation.ImageOrientationPatient = [float(v) for v in iop]
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1.0, 0.0, "HU"
    shared = Dataset()
    shared.PixelMeasuresSequence = pydicom.Sequence([measures])
    shared.PlaneOrientationSequence = pydicom.Sequence([orientation])
    shared.PixelValueTransformationSequence = pydicom.Sequence([transform])
    ds.SharedFunctionalGroupsSequence = pydicom.Sequence([shared])
    per_frame, pixels = [], []
    for t in range(nt):
        for z in range(nz):
            position, content, groups = Dataset(), Dataset(), Dataset()
            position.ImagePositionPatient = [float(v) for v in origin + z * step]
            content.FrameAcquisitionDateTime = study["date"] + _clock(float(times[t]))
            content.TemporalPositionIndex = t + 1
            groups.PlanePositionSequence = pydicom.Sequence([position])
            groups.FrameContentSequence = pydicom.Sequence([content])
            per_frame.append(groups)
            pixels.append(np.round(array[:, :, z, t]).astype(np.int16).T)
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(per_frame)
    ds.PixelData = np.ascontiguousarray(np.stack(pixels)).tobytes()
    _save(pydicom, ds, folder)
    return series_uid


def write_dicom_study(case: Case, folder: str | os.PathLike, *, frame_times: np.ndarray | None = None,
                      patient: str = "PHANTOM01", enhanced: bool = False) -> dict[str, str]:
    """Write ``case``'s ``ct``, ``cta``, maps and ``ctp`` (those it has) as DICOM series under
    ``folder``; returns key -> SeriesInstanceUID.

    Args:
        frame_times: acquisition time (s) of every CTP frame, increasing (default: ``k * dt``);
            uneven times make an unevenly sampled series.
        enhanced: write the CTP as one Enhanced CT (multi-frame) object instead of one file per image.
    """
    pydicom = _pydicom()
    folder = Path(folder)
    study = {"patient": patient, "uid": pydicom.uid.generate_uid(), "date": datetime.date(2026, 1, 1).strftime("%Y%m%d"),
             "frame_of_reference": pydicom.uid.generate_uid()}
    uids: dict[str, str] = {}
    number = 1
    for key, description, contrast in (("ct", "NCCT head", False), ("cta", "CTA head", True)):
        if key in case:
            uids[key] = _write_series(pydicom, study, folder, case[key].array, case[key].affine, number, description,
                                      contrast=contrast)
            number += 1
    for key in MAP_KEYS:
        if key in case:
            values = case[key].array
            slope = max(MAP_SLOPE, float(np.abs(values).max()) / 32000.0)
            uids[key] = _write_series(pydicom, study, folder, values, case[key].affine, number,
                                      f"Perfusion {key.upper()}", slope=slope, derived=True)
            number += 1
    if "ctp" in case:
        ctp = case["ctp"]
        times = np.asarray(frame_times if frame_times is not None else np.arange(ctp.shape[3]) * ctp.dt, np.float64)
        if times.shape != (ctp.shape[3],):
            raise ConfigError("frame_times", f"{times.size} times for {ctp.shape[3]} frames")
        if enhanced:
            uids["ctp"] = _write_enhanced(pydicom, study, folder, ctp.array, ctp.affine, number, "CTP brain perfusion",
                                          times)
        else:
            uids["ctp"] = _write_series(pydicom, study, folder, ctp.array, ctp.affine, number, "CTP brain perfusion",
                                        contrast=True, times=times)
    return uids
