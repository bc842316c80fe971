"""DICOM out: the predicted masks as a DICOM Segmentation of the source CT series, and the case
report's key figure as a secondary capture (highdicom; ``pip install 'strokesynth[dicom]'``).

The SEG references every source CT image it segments (Referenced SOP Instance UID per frame,
frames in the source's slice order, the source's Frame of Reference), so a PACS viewer overlays it
on the study it came from. Segments: 1 "infarct core" (SNOMED CT 55641003 Infarct, in the
category 49755003 Morphologically Abnormal Structure), 2 "hypoperfusion (Tmax > 6 s)" where a Tmax
map exists (a local code: SNOMED CT has no concept for it). Empty frames are kept (a reader can
check one frame per source image).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from strokesynth.errors import ConfigError, DataError

SOFTWARE = "strokesynth"

#: type-2 patient and study attributes a SEG copies from its source (present, possibly empty); older
#: or anonymised series may lack them, and they are then copied as empty
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
          "AccessionNumber", "ReferringPhysicianName")


def _highdicom():
    try:
        import highdicom as hd
    except ImportError:
        raise ConfigError("--dicom-out", "DICOM output needs highdicom: pip install 'strokesynth[dicom]'") from None
    return hd


def write_segmentation(source_files: Sequence[Path], masks: dict[str, np.ndarray], path: Path,
                       *, version: str = "0") -> Path:
    """Write ``masks`` (name -> ``(X, Y, Z)`` bool on the source CT's grid, z in the order of
    ``source_files``) as one DICOM SEG to ``path``.

    Args:
        source_files: the CT series' files sorted along the slice normal (as the import sorted them).
        masks: ``"core"`` (required) and optionally ``"hypoperfusion"``.
    """
    import pydicom
    from pydicom.sr.codedict import codes

    hd = _highdicom()
    sources = [pydicom.dcmread(p) for p in source_files]
    for ds in sources:
        for name in _TYPE2:
            if name not in ds:
                setattr(ds, name, "")
    names = [k for k in ("core", "hypoperfusion") if k in masks]
    if "core" not in names:
        raise DataError(path, "no core mask to write")
    shape = masks["core"].shape
    if shape[2] != len(sources) or (shape[1], shape[0]) != (int(sources[0].Rows), int(sources[0].Columns)):
        raise DataError(path, f"mask {shape} does not match the source CT series ({sources[0].Columns} x "
                              f"{sources[0].Rows} x {len(sources)})")
    algorithm = hd.AlgorithmIdentificationSequence(name=SOFTWARE, version=version,
                                                   family=codes.cid7162.ArtificialIntelligence)
    concepts = {"core": ("infarct core", hd.sr.CodedConcept("55641003", "SCT", "Infarct")),
                "hypoperfusion": ("hypoperfusion (Tmax > 6 s)",
                                  hd.sr.CodedConcept("TMAX6", "99STROKESYNTH", "Hypoperfused tissue, Tmax > 6 s"))}
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=concepts[name][0],
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=concepts[name][1], algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm) for i, name in enumerate(names)]
    # (frames = source images, rows, columns, segments)
    pixels = np.stack([np.transpose(masks[name] > 0, (2, 1, 0)) for name in names], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=9001,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=SOFTWARE, manufacturer_model_name=SOFTWARE,
        software_versions=version, device_serial_number="0", omit_empty_frames=False,
        series_description="strokesynth infarct core")
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def write_secondary_capture(reference: Path, image_png: Path, path: Path, *, version: str = "0") -> Path:
    """The PNG ``image_png`` (the case report's key figure) as an RGB Secondary Capture image in the
    study of the DICOM file ``reference`` (written with pydicom: a report figure has no patient
    orientation, which highdicom's SC class requires)."""
    import pydicom
    from PIL import Image

    ref = pydicom.dcmread(reference, stop_before_pixels=True)
    rgb = np.ascontiguousarray(np.asarray(Image.open(image_png).convert("RGB")), dtype=np.uint8)
    ds = pydicom.Dataset()
    ds.SOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    for name in (*_TYPE2, "StudyInstanceUID"):
        setattr(ds, name, ref.get(name, ""))
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = pydicom.uid.generate_uid(), 9002, 1
    ds.SeriesDescription = "strokesynth case report figure"
    ds.Modality, ds.ConversionType, ds.Manufacturer, ds.SoftwareVersions = "OT", "WSD", SOFTWARE, version
    ds.PatientOrientation = ""
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
