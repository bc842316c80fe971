"""Plain-folder layout: the simplest way to bring your own data.

::

    ROOT/
      CASE_A/ct.nii.gz  cbf.nii.gz  cbv.nii.gz  mtt.nii.gz  tmax.nii.gz  lesion.nii.gz
      CASE_B/dwi.nii.gz adc.nii.gz  lesion.nii.gz
      strokesynth.json              (optional: subjects, own-grid modalities)

Each file is named by its modality key (see ``strokesynth.data.modalities``); the lesion
mask, if any, is ``lesion.nii.gz``. A ``<modality>.json`` beside a file is kept as that volume's
sidecar (``meta["sidecar"]``). Other files that are not NIfTI are ignored (and listed).
"""

from __future__ import annotations

import json
from pathlib import Path

from strokesynth._fs import write_json_atomic
from strokesynth.data.case import Case
from strokesynth.errors import DataError
from strokesynth.io.case_files import case_from_files, safe_name, write_case_volumes
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.nifti import is_nifti_name, strip_nifti_suffix
from strokesynth.io.problems import ProblemLog

NAME = "plain"


def _case_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def detect(root: Path) -> bool:
    """True if some sub-folder of ``root`` holds a NIfTI file."""
    return any(is_nifti_name(f) for d in _case_dirs(root) for f in d.iterdir())


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Read every ``ROOT/CASE/<modality>.nii[.gz]``."""
    cases = []
    for case_dir in _case_dirs(root):
        with log.guard():
            files: dict[str, Path] = {}
            sidecars: dict[str, dict] = {}
            for path in sorted(case_dir.iterdir()):
                if path.name.startswith("."):
                    continue
                if path.suffix == ".json" and path.with_suffix(".nii.gz").exists() | path.with_suffix(".nii").exists():
                    try:
                        sidecars[path.stem] = {"sidecar": json.loads(path.read_text(encoding="utf-8"))}
                    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                        raise DataError(path, f"sidecar is not valid JSON ({exc})") from None
                    continue
                if not is_nifti_name(path):
                    log.note(path, "ignored (not .nii/.nii.gz)")
                    continue
                key = strip_nifti_suffix(path.name)
                if key in files:
                    log.add(path, f"modality {key!r} given twice ({files[key].name} and {path.name})")
                    continue
                files[key] = path
            if not files:
                log.add(case_dir, "case folder holds no .nii/.nii.gz file")
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
                    volume_meta=sidecars,
                )
            )
    return cases


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Write ``ROOT/<case id>/<modality>.nii.gz`` for every modality of every case."""
    for case in cases:
        folder = root / safe_name(case.id)
        write_case_volumes(case, {k: folder / f"{k}.nii.gz" for k in case.modalities})
        for key, vol in case.modalities.items():
            if vol.meta.get("sidecar") is not None:
                write_json_atomic(folder / f"{key}.json", vol.meta["sidecar"])
        meta.subjects[case.id] = case.subject
