"""ISLES 2018 layout (CT perfusion challenge), read and write.

::

    ROOT/
      case_1/
        SMIR.Brain.XX.O.CT.345562/SMIR.Brain.XX.O.CT.345562.nii
        SMIR.Brain.XX.O.CT_4DPWI.345563/SMIR.Brain.XX.O.CT_4DPWI.345563.nii
        SMIR.Brain.XX.O.CT_CBF.345564/...   CT_CBV, CT_MTT, CT_Tmax
        SMIR.Brain.XX.O.OT.345568/...       (training cases only)
        SMIR.Brain.XX.O.MR_DWI.345569/...   (optional)
        SMIR.Brain.XX.O.MR_Flair.345570/... (optional)
      case_2/ ...

``ROOT`` is the folder holding the case folders (the challenge's ``TRAINING`` or ``TESTING``).
A case must have CT and its perfusion: the raw 4D CTP (CT_4DPWI), the four maps (CT_CBF,
CT_CBV, CT_MTT, CT_Tmax) or both. A case with its CTP but without (some of) the maps is read as
it is: ``predict`` and ``perfusion`` compute the maps from the CTP, and a command that needs a map
the case lacks (``train`` on maps) names it. OT (the core mask) and the MR folders are optional. Entries of a case folder that do not start with ``SMIR.`` are
ignored (and listed as notes), so extra material can live beside a case.
"""

from __future__ import annotations

import re
from pathlib import Path

from strokesynth.data.case import Case
from strokesynth.errors import OutputError
from strokesynth.io.case_files import case_from_files, safe_name, write_case_volumes
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.nifti import NIFTI_SUFFIXES
from strokesynth.io.problems import ProblemLog

NAME = "isles2018"

#: ISLES 2018 folder modality -> strokesynth key.
MOD_TO_KEY = {
    "CT": "ct",
    "CT_4DPWI": "ctp",
    "CT_CBF": "cbf",
    "CT_CBV": "cbv",
    "CT_MTT": "mtt",
    "CT_Tmax": "tmax",
    "OT": "lesion",
    "MR_DWI": "dwi",
    "MR_Flair": "flair",
}
KEY_TO_MOD = {v: k for k, v in MOD_TO_KEY.items()}
REQUIRED = ("CT",)
#: The raw 4D CTP, and the maps a case needs when it does not have it.
RAW_CTP = "CT_4DPWI"
MAPS = ("CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax")


def missing_modalities(keys: set[str]) -> list[str]:
    """The ISLES 2018 modalities a case with the strokesynth ``keys`` lacks (CT, and the raw CTP or
    else all four maps)."""
    missing = [m for m in REQUIRED if MOD_TO_KEY[m] not in keys]
    if MOD_TO_KEY[RAW_CTP] not in keys:
        missing += [m for m in MAPS if MOD_TO_KEY[m] not in keys]
    return missing
_FOLDER = re.compile(r"^SMIR\.Brain\.XX\.O\.(?P<mod>[A-Za-z0-9_]+)\.(?P<id>\d+)$")


def _case_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and any(c.name.startswith("SMIR.") for c in p.iterdir())),
        key=_natural_key,
    )


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def detect(root: Path) -> bool:
    """True if some sub-folder of ``root`` holds ``SMIR.*`` folders."""
    return any(True for _ in _case_dirs(root))


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Read every case folder under ``root`` (see module docstring)."""
    for name in ("TRAINING", "TESTING"):
        if (root / name).is_dir() and not _case_dirs(root):
            log.add(root, f"holds a {name} folder; point at {root / name} instead")
            return []
    cases = []
    for case_dir in _case_dirs(root):
        with log.guard():
            files: dict[str, Path] = {}
            for entry in sorted(case_dir.iterdir()):
                if not entry.name.startswith("SMIR."):
                    if not entry.name.startswith("."):
                        log.note(entry, "ignored (not a SMIR.* folder)")
                    continue
                match = _FOLDER.match(entry.name)
                if not match or not entry.is_dir():
                    log.add(entry, "not an ISLES 2018 folder name (expected SMIR.Brain.XX.O.<MOD>.<number>/)")
                    continue
                mod = match["mod"]
                if mod not in MOD_TO_KEY:
                    log.add(entry, f"unknown ISLES 2018 modality {mod!r} (known: {', '.join(MOD_TO_KEY)})")
                    continue
                key = MOD_TO_KEY[mod]
                if key in files:
                    log.add(entry, f"second {mod} folder in the case (first: {files[key].parent.name})")
                    continue
                images = [p for p in sorted(entry.iterdir()) if p.name.endswith(NIFTI_SUFFIXES)]
                if len(images) != 1:
                    log.add(entry, f"expected one .nii/.nii.gz file, found {len(images)}")
                    continue
                files[key] = images[0]
            missing = missing_modalities(set(files))
            if missing:
                log.add(case_dir, f"missing modality {', '.join(missing)}"
                                  + (f" (or {RAW_CTP}, the raw CTP they are computed from)" if "CT" not in missing
                                     else ""))
                continue
            case_id = meta.case_id(case_dir.name)
            cases.append(
                case_from_files(
                    case_id,
                    meta.subject(case_id),
                    files,
                    own_grid=set(meta.own_grid),
                    where=case_dir,
                    meta={"layout": NAME, "folder": str(case_dir)},
                )
            )
    return cases


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Write ``cases`` under ``root`` in the ISLES 2018 layout (every case needs the required set).

    File numbers count up from 100000 in case order, so the output is deterministic.
    """
    number = 100000
    for case in cases:
        folder = safe_name(case.id)
        unsupported = sorted(set(case.modalities) - set(KEY_TO_MOD))
        if unsupported:
            raise OutputError(case.where or case.id, f"no ISLES 2018 folder for {', '.join(unsupported)}")
        missing = missing_modalities(set(case.modalities))
        if missing:
            raise OutputError(case.where or case.id, f"an ISLES 2018 case needs {', '.join(missing)}")
        targets = {}
        for key in sorted(case.modalities, key=lambda k: list(KEY_TO_MOD).index(k)):
            stem = f"SMIR.Brain.XX.O.{KEY_TO_MOD[key]}.{number}"
            number += 1
            targets[key] = root / folder / stem / f"{stem}.nii"
        write_case_volumes(case, targets)
        meta.subjects[case.id] = case.subject
