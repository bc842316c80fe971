"""ISLES'22 / BIDS layout (MRI stroke challenge), read and write.

Written as BIDS that BIDS tools index (pybids with ``validate=True`` finds every MR image and
every mask)::

    ROOT/
      rawdata/dataset_description.json                  (DatasetType: raw)
      rawdata/sub-p1/ses-0001/dwi/sub-p1_ses-0001_run-1_dwi.nii.gz   (+ .json sidecar)
      rawdata/sub-p1/ses-0001/anat/sub-p1_ses-0001_run-1_FLAIR.nii.gz (and _T1w)
      rawdata/sub-p1/ses-0001/ct/sub-p1_ses-0001_run-1_ct.nii.gz      (and _ctp: the raw 4D CTP)
      derivatives/dataset_description.json              (DatasetType: derivative, GeneratedBy)
      derivatives/sub-p1/ses-0001/sub-p1_ses-0001_run-1_msk.nii.gz    (the lesion, as ISLES'22)
      derivatives/sub-p1/ses-0001/dwi/sub-p1_ses-0001_run-1_adc.nii.gz
      derivatives/sub-p1/ses-0001/perf/sub-p1_ses-0001_run-1_cbf.nii.gz (cbv, mtt, tmax)

- Scans of one subject are slabs (or repeats) of one visit: they share a session and differ in
  ``run-N``; a subject with one scan has no run entity. Case ids are the file-name stem before
  the suffix (``sub-p1_ses-0001_run-1``), the subject ``sub-p1``.
- ADC and the perfusion maps are computed from other images, so they are derivatives (BIDS has
  no raw ``adc``/``cbf`` suffix). BIDS has no CT modality yet (BEP024 is a proposal): CT and the
  raw CTP keep the ``ct``/``ctp`` suffixes of the ISLES 2024 convention in ``ct/``; BIDS
  validators skip them, strokesynth reads them.
- Whole-brain studies (the phantom's ``--mr-study``) add ``derivatives/.../anat/*_dseg`` (the
  anatomical label map, key ``anatomy``) and skull-stripped images and brain mask with the BIDS
  ``desc-brain`` entity (``*_desc-brain_T1w``, ``*_desc-brain_dwi``, ``*_desc-brain_mask``; keys
  ``t1_brain``, ``dwi_brain``, ``brain``) beside the images of the same scan.
- Reading also accepts the challenge's own release (files directly in
  ``rawdata/sub-X/ses-Y/``, ``_adc`` beside ``_dwi``, masks in ``derivatives/sub-X/ses-Y/``),
  with or without a session level.

FLAIR (and T1) live on their own grid (as in the challenge data); DWI, ADC and the mask share
one. JSON sidecars are kept in each volume's ``meta["sidecar"]`` and written back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from strokesynth._fs import write_json_atomic
from strokesynth.data.case import LABEL_KEY, Case
from strokesynth.errors import DataError, OutputError
from strokesynth.io.case_files import case_from_files, write_case_volumes
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.nifti import is_nifti_name, strip_nifti_suffix
from strokesynth.io.problems import ProblemLog

NAME = "isles22"

#: BIDS suffix -> strokesynth key (``FLAIR`` also read as ``flair``, the challenge's spelling).
SUFFIX_TO_KEY = {"dwi": "dwi", "adc": "adc", "FLAIR": "flair", "flair": "flair", "T1w": "t1", "ct": "ct",
                 "ctp": "ctp", "cbf": "cbf", "cbv": "cbv", "mtt": "mtt", "tmax": "tmax"}
#: strokesynth key -> (tree, datatype folder, suffix) of the written file.
KEY_TO_FILE = {"dwi": ("rawdata", "dwi", "dwi"), "flair": ("rawdata", "anat", "FLAIR"),
               "t1": ("rawdata", "anat", "T1w"), "ct": ("rawdata", "ct", "ct"), "ctp": ("rawdata", "ct", "ctp"),
               "adc": ("derivatives", "dwi", "adc"), "cbf": ("derivatives", "perf", "cbf"),
               "cbv": ("derivatives", "perf", "cbv"), "mtt": ("derivatives", "perf", "mtt"),
               "tmax": ("derivatives", "perf", "tmax"), "anatomy": ("derivatives", "anat", "dseg"),
               "brain": ("derivatives", "anat", "desc-brain_mask"),
               "dwi_brain": ("derivatives", "dwi", "desc-brain_dwi"),
               "adc_brain": ("derivatives", "dwi", "desc-brain_adc"),
               "flair_brain": ("derivatives", "anat", "desc-brain_FLAIR"),
               "t1_brain": ("derivatives", "anat", "desc-brain_T1w")}
#: derivative suffixes read as their own keys (``dseg``: an anatomical segmentation) and, with the
#: ``desc-brain`` entity, skull-stripped images (``<key>_brain``) and the brain mask (``brain``)
DERIVED_SUFFIX_TO_KEY = {"dseg": "anatomy"}
BRAIN_DESC = "_desc-brain"
MASK_SUFFIX = "msk"
OWN_GRID = frozenset({"flair"})
DATATYPES = ("anat", "dwi", "ct", "perf", "func")
_ENTITIES = re.compile(r"^(?P<sub>sub-[A-Za-z0-9]+)(?:_(?P<ses>ses-[A-Za-z0-9]+))?"
                       r"(?P<rest>(?:_(?:acq|run|rec|desc|space)-[A-Za-z0-9]+)*)_(?P<suffix>[A-Za-z0-9]+)$")
DESCRIPTION_RAW = {"Name": "strokesynth export", "BIDSVersion": "1.9.0", "DatasetType": "raw",
                   "GeneratedBy": [{"Name": "strokesynth"}]}
DESCRIPTION_DERIVED = {"Name": "strokesynth export: lesion masks, ADC and perfusion maps", "BIDSVersion": "1.9.0",
                       "DatasetType": "derivative", "GeneratedBy": [{"Name": "strokesynth"}]}


def detect(root: Path) -> bool:
    """True if ``root/rawdata`` holds ``sub-*`` folders."""
    raw = root / "rawdata"
    return raw.is_dir() and any(p.name.startswith("sub-") for p in raw.iterdir())


def _session_dirs(base: Path) -> list[tuple[str, str | None, Path]]:
    out = []
    for sub in sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("sub-")):
        sessions = sorted(p for p in sub.iterdir() if p.is_dir() and p.name.startswith("ses-"))
        if sessions:
            out.extend((sub.name, ses.name, ses) for ses in sessions)
        else:
            out.append((sub.name, None, sub))
    return out


def _sidecar(path: Path) -> dict[str, Any] | None:
    side = path.with_name(strip_nifti_suffix(path.name) + ".json")
    if not side.exists():
        return None
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(side, f"sidecar is not valid JSON ({exc})") from None


def _scan_files(folder: Path, log: ProblemLog) -> list[Path]:
    """NIfTI files of a session folder and its datatype subfolders."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith((".json", ".bval", ".bvec", ".tsv")) or path.name.startswith("."):
            continue
        if path.is_dir():
            if path.name in DATATYPES:
                out.extend(_scan_files(path, log))
            else:
                log.note(path, "ignored (folder inside a session)")
            continue
        if not is_nifti_name(path):
            log.add(path, "not a NIfTI file (expected .nii or .nii.gz)")
            continue
        out.append(path)
    return out


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Read every ``rawdata/sub-*[/ses-*]`` folder with the matching ``derivatives`` files."""
    cases = []
    for sub, ses, folder in _session_dirs(root / "rawdata"):
        with log.guard():
            base = f"{sub}_{ses}" if ses else sub
            deriv = root / "derivatives" / sub / (ses or "")
            found: dict[str, dict[str, Path]] = {}  # case layout id -> key -> file
            sidecars: dict[str, dict[str, dict[str, Any]]] = {}
            paths = _scan_files(folder, log) + (_scan_files(deriv, log) if deriv.is_dir() else [])
            for path in paths:
                match = _ENTITIES.match(strip_nifti_suffix(path.name))
                if not match or match["sub"] != sub or (match["ses"] or None) != ses:
                    log.add(path, f"file name does not follow {base}[_run-N]_<suffix>.nii.gz")
                    continue
                suffix = match["suffix"]
                rest = match["rest"]
                key = LABEL_KEY if suffix == MASK_SUFFIX else SUFFIX_TO_KEY.get(suffix, DERIVED_SUFFIX_TO_KEY.get(suffix))
                if BRAIN_DESC in rest:  # skull-stripped image or brain mask of the same scan
                    rest = rest.replace(BRAIN_DESC, "")
                    key = "brain" if suffix == "mask" else (f"{key}_brain" if key and key != LABEL_KEY else None)
                if key is None:
                    known = ", ".join(sorted({*SUFFIX_TO_KEY, *DERIVED_SUFFIX_TO_KEY, MASK_SUFFIX, "desc-brain_mask"}))
                    log.add(path, f"unknown modality suffix {suffix!r} (known: {known})")
                    continue
                layout_id = base + rest
                files = found.setdefault(layout_id, {})
                if key in files:
                    log.add(path, f"second {key} file for {layout_id} (first: {files[key].name})")
                    continue
                files[key] = path
                side = _sidecar(path)
                if side is not None:
                    sidecars.setdefault(layout_id, {})[key] = {"sidecar": side}
            if not found:
                log.add(folder, "no image found in the session folder")
                continue
            for layout_id, files in sorted(found.items()):
                if not any(k != LABEL_KEY for k in files):
                    log.add(files[LABEL_KEY], f"lesion mask of {layout_id} without an image")
                    continue
                case_id = meta.case_id(layout_id)
                run = re.search(r"_run-([A-Za-z0-9]+)", layout_id)
                cases.append(
                    case_from_files(
                        case_id,
                        meta.subject(case_id, default=sub),
                        files,
                        own_grid=OWN_GRID | set(meta.own_grid),
                        where=folder,
                        meta={"layout": NAME, "folder": str(folder),
                              "bids": {"sub": sub, "ses": ses, "run": run.group(1) if run else None}},
                        volume_meta=sidecars.get(layout_id, {}),
                    )
                )
    return cases


def _label(text: str, what: str) -> str:
    label = re.sub(r"[^A-Za-z0-9]", "", text)
    if not label:
        raise OutputError(None, f"{what} {text!r} gives an empty BIDS label")
    return label


def _entities(cases: list[Case]) -> list[str]:
    """The BIDS stem (``sub-X_ses-Y[_run-N]``) of each case.

    Cases read from BIDS keep their entities. Others: one session per subject, its scans told
    apart by ``run-N`` (a subject with one scan has no run).
    """
    per_subject: dict[str, int] = {}
    for case in cases:
        per_subject[case.subject] = per_subject.get(case.subject, 0) + 1
    counters: dict[str, int] = {}
    stems = []
    for case in cases:
        bids = case.meta.get("bids") or {}
        if bids.get("sub"):
            stem = str(bids["sub"]) + (f"_{bids['ses']}" if bids.get("ses") else "")
            stem += f"_run-{bids['run']}" if bids.get("run") else ""
        else:
            stem = f"sub-{_label(case.subject, 'subject')}_ses-0001"
            if per_subject[case.subject] > 1:
                counters[case.subject] = counters.get(case.subject, 0) + 1
                stem += f"_run-{counters[case.subject]}"
        stems.append(stem)
    return stems


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Write ``cases`` as BIDS ``rawdata``/``derivatives`` (see the module docstring)."""
    used: set[str] = set()
    for case, stem in zip(cases, _entities(cases), strict=True):
        unsupported = sorted(set(case.modalities) - set(KEY_TO_FILE) - {LABEL_KEY})
        if unsupported:
            raise OutputError(
                case.where or case.id,
                f"no ISLES'22/BIDS file name for {', '.join(unsupported)} (it holds {', '.join(KEY_TO_FILE)}, lesion)",
            )
        if stem in used:
            raise OutputError(case.where or case.id, f"two cases map to {stem}")
        used.add(stem)
        parts = stem.split("_")
        sub, ses = parts[0], next((p for p in parts[1:] if p.startswith("ses-")), "")
        targets = {}
        for key in case.modalities:
            if key == LABEL_KEY:
                targets[key] = root / "derivatives" / sub / ses / f"{stem}_{MASK_SUFFIX}.nii.gz"
                continue
            tree, datatype, suffix = KEY_TO_FILE[key]
            path = root / tree / sub / ses / datatype / f"{stem}_{suffix}.nii.gz"
            targets[key] = path
            side = case[key].meta.get("sidecar")
            if side is not None:
                write_json_atomic(path.with_name(f"{stem}_{suffix}.json"), side)
        write_case_volumes(case, targets)
        if stem != case.id:
            meta.case_ids[stem] = case.id
        meta.subjects[case.id] = case.subject
    write_json_atomic(root / "rawdata" / "dataset_description.json", DESCRIPTION_RAW)
    write_json_atomic(root / "derivatives" / "dataset_description.json", DESCRIPTION_DERIVED)
