"""ISLES'22 BIDS-like layout (MRI stroke challenge), read and write.

::

    ROOT/
      rawdata/sub-strokecase0001/ses-0001/
        sub-strokecase0001_ses-0001_dwi.nii.gz   (+ .json sidecar)
        sub-strokecase0001_ses-0001_adc.nii.gz
        sub-strokecase0001_ses-0001_flair.nii.gz
      derivatives/sub-strokecase0001/ses-0001/
        sub-strokecase0001_ses-0001_msk.nii.gz

The case id is ``sub-X_ses-Y``, the subject ``sub-X``. FLAIR lives on its own grid (as in the
challenge data); DWI, ADC and the mask share one. JSON sidecars are kept in each volume's
``meta["sidecar"]`` and written back. A session level is optional (``rawdata/sub-X/*.nii.gz``).
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

#: BIDS suffix -> strokesynth key (raw data).
SUFFIX_TO_KEY = {"dwi": "dwi", "adc": "adc", "flair": "flair", "T1w": "t1", "ct": "ct"}
KEY_TO_SUFFIX = {v: k for k, v in SUFFIX_TO_KEY.items()}
MASK_SUFFIX = "msk"
OWN_GRID = frozenset({"flair"})
_ENTITIES = re.compile(r"^(?P<sub>sub-[A-Za-z0-9]+)(?:_(?P<ses>ses-[A-Za-z0-9]+))?_(?P<suffix>[A-Za-z0-9]+)$")


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


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Read every ``rawdata/sub-*/ses-*`` folder and its ``derivatives`` mask."""
    cases = []
    for sub, ses, folder in _session_dirs(root / "rawdata"):
        with log.guard():
            layout_id = f"{sub}_{ses}" if ses else sub
            files: dict[str, Path] = {}
            sidecars: dict[str, dict[str, Any]] = {}
            for path in sorted(folder.iterdir()):
                if path.name.endswith(".json") or path.name.startswith("."):
                    continue
                if path.is_dir():
                    log.note(path, "ignored (folder inside a session)")
                    continue
                if not is_nifti_name(path):
                    log.add(path, "not a NIfTI file (expected .nii or .nii.gz)")
                    continue
                match = _ENTITIES.match(strip_nifti_suffix(path.name))
                if not match or match["sub"] != sub or (match["ses"] or None) != ses:
                    log.add(path, f"file name does not follow {layout_id}_<suffix>.nii.gz")
                    continue
                suffix = match["suffix"]
                if suffix not in SUFFIX_TO_KEY:
                    log.add(path, f"unknown modality suffix {suffix!r} (known: {', '.join(SUFFIX_TO_KEY)})")
                    continue
                key = SUFFIX_TO_KEY[suffix]
                files[key] = path
                side = _sidecar(path)
                if side is not None:
                    sidecars[key] = {"sidecar": side}
            deriv = root / "derivatives" / sub / (ses or "")
            masks = sorted(deriv.glob(f"{layout_id}_{MASK_SUFFIX}.nii*")) if deriv.is_dir() else []
            if len(masks) > 1:
                log.add(deriv, f"found {len(masks)} lesion masks, expected one")
                continue
            if masks:
                files[LABEL_KEY] = masks[0]
            if not any(k != LABEL_KEY for k in files):
                log.add(folder, "no image found in the session folder")
                continue
            case_id = meta.case_id(layout_id)
            cases.append(
                case_from_files(
                    case_id,
                    meta.subject(case_id, default=sub),
                    files,
                    own_grid=OWN_GRID | set(meta.own_grid),
                    where=folder,
                    meta={"layout": NAME, "folder": str(folder), "bids": {"sub": sub, "ses": ses}},
                    volume_meta=sidecars,
                )
            )
    return cases


def _entities(case: Case, counters: dict[str, int]) -> tuple[str, str]:
    bids = case.meta.get("bids") or {}
    if bids.get("sub") and bids.get("ses"):
        return str(bids["sub"]), str(bids["ses"])
    label = re.sub(r"[^A-Za-z0-9]", "", case.subject)
    if not label:
        raise OutputError(None, f"subject {case.subject!r} gives an empty BIDS label")
    counters[label] = counters.get(label, 0) + 1
    return f"sub-{label}", f"ses-{counters[label]:04d}"


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Write ``cases`` as ``rawdata``/``derivatives``; ids that are not BIDS become ``sub-X_ses-N``."""
    counters: dict[str, int] = {}
    used: set[str] = set()
    for case in cases:
        unsupported = sorted(set(case.modalities) - set(KEY_TO_SUFFIX) - {LABEL_KEY})
        if unsupported:
            raise OutputError(
                case.where or case.id,
                f"no ISLES'22 file name for {', '.join(unsupported)} (it holds {', '.join(KEY_TO_SUFFIX)}, lesion)",
            )
        sub, ses = _entities(case, counters)
        layout_id = f"{sub}_{ses}"
        if layout_id in used:
            raise OutputError(case.where or case.id, f"two cases map to {layout_id}")
        used.add(layout_id)
        targets = {}
        for key in case.modalities:
            if key == LABEL_KEY:
                targets[key] = root / "derivatives" / sub / ses / f"{layout_id}_{MASK_SUFFIX}.nii.gz"
            else:
                path = root / "rawdata" / sub / ses / f"{layout_id}_{KEY_TO_SUFFIX[key]}.nii.gz"
                targets[key] = path
                side = case[key].meta.get("sidecar")
                if side is not None:
                    write_json_atomic(path.with_name(f"{layout_id}_{KEY_TO_SUFFIX[key]}.json"), side)
        write_case_volumes(case, targets)
        if layout_id != case.id:
            meta.case_ids[layout_id] = case.id
        meta.subjects[case.id] = case.subject
    write_json_atomic(
        root / "dataset_description.json",
        {"Name": "strokesynth export", "BIDSVersion": "1.8.0", "GeneratedBy": [{"Name": "strokesynth"}]},
    )
