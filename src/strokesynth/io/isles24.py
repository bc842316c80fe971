"""ISLES'24 release (Riedel, de la Rosa et al., arXiv:2408.11142): acute CT perfusion with the
follow-up MRI and the final infarct, read (one case per subject, both sessions).

::

    ROOT/
      raw_data/sub-strokeNNNN/ses-01/sub-strokeNNNN_ses-01_ncct.nii.gz     (each scan in its own space)
      derivatives/sub-strokeNNNN/ses-01/sub-strokeNNNN_ses-01_space-ncct_cta.nii.gz   (and _ctp: the 4D CTP)
      derivatives/sub-strokeNNNN/ses-01/perfusion-maps/sub-strokeNNNN_ses-01_space-ncct_cbf.nii.gz (cbv, mtt, tmax)
      derivatives/sub-strokeNNNN/ses-01/..._lvo-msk.nii.gz, ..._cow-msk.nii.gz       (from the CTA)
      derivatives/sub-strokeNNNN/ses-02/sub-strokeNNNN_ses-02_space-ncct_dwi.nii.gz   (and _adc)
      derivatives/sub-strokeNNNN/ses-02/sub-strokeNNNN_ses-02_space-ncct_lesion-msk.nii.gz
      phenotype/...

Everything under ``derivatives/`` is co-registered to the acute non-contrast CT (one grid per
subject); that is what is read. The NCCT itself, the reference of that space, is taken from
``derivatives/`` when it is there and else from ``raw_data/<subject>/ses-01/``. File names differ
between releases (the organisers' sample has ``sub-stroke0014_ses-02_lesion-msk.nii.gz``, the
Zenodo release ``*_space-ncct_lesion-msk.nii.gz``): both are accepted, and where a subject has
both, the ``space-ncct`` one is taken. ``check`` notes which files were taken for each key.

Keys: ``ncct`` -> ``ct``, ``cta``, ``ctp``, ``cbf``, ``cbv``, ``mtt``, ``tmax`` (session 1);
``dwi``, ``adc`` (session 2, the **follow-up** MRI 2-9 days after the CTP) and ``lesion-msk`` ->
``lesion``: the **final** infarct drawn on the follow-up MRI, not the acute core of ISLES 2018;
``lvo-msk`` -> ``lvo``, ``cow-msk`` -> ``cow``. Not in the release but read where a user adds
it: a whole-brain label map in NCCT space, ``sub-X_ses-NN_space-ncct_dseg.nii.gz`` (BIDS's
discrete segmentation, e.g. SynthSeg's on the follow-up DWI) -> ``anatomy``, which the label-map
recipe needs (``phantom --layout isles24`` writes one in ses-02). Every volume carries its session in
``meta["session"]``, every case its files in ``meta["files"]``.

A case needs its acute imaging: the NCCT and the raw CTP or all four maps (the maps a case lacks
are computed from its CTP where a command needs them). A JSON sidecar beside an image travels
with it (``meta["sidecar"]``: the CTP's frame times). The clinical tables under
``phenotype/<subject>/ses-NN/*.csv`` (one header row and one row of values each) go into
``case.meta["clinical"]`` as ``{session: {column: value}}``; ``check`` summarises them.

The layout ``isles24-raw`` (:data:`RAW_NAME`, never detected, asked for with ``--layout``) reads
``raw_data/`` instead: the acute scans each on its own grid (the NCCT is the reference; the CTP,
its maps and the CTA keep their native geometry), without the follow-up and the masks, which the
release has only in NCCT space.

:func:`write` writes the same tree (``derivatives/`` in NCCT space, the NCCT under ``raw_data/``,
``phenotype/`` from ``case.meta["clinical"]``), which ``strokesynth phantom --layout isles24`` uses.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from strokesynth._fs import write_json_atomic
from strokesynth.data.case import Case
from strokesynth.errors import OutputError
from strokesynth.io.case_files import case_from_files, write_case_volumes
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.nifti import NIFTI_SUFFIXES, read_sidecar
from strokesynth.io.problems import ProblemLog

NAME = "isles24"
#: the layout name of ``raw_data/`` read on its own (each scan on its own grid)
RAW_NAME = "isles24-raw"

#: ISLES'24 file suffix -> strokesynth key.
SUFFIX_TO_KEY = {"ncct": "ct", "cta": "cta", "ctp": "ctp", "cbf": "cbf", "cbv": "cbv", "mtt": "mtt", "tmax": "tmax",
                 "dwi": "dwi", "adc": "adc", "lesion-msk": "lesion", "lvo-msk": "lvo", "cow-msk": "cow",
                 "dseg": "anatomy"}
MAP_KEYS = ("cbf", "cbv", "mtt", "tmax")
_FILE = re.compile(r"^(?P<sub>sub-[A-Za-z0-9]+)_(?P<ses>ses-[0-9]+)(?:_space-(?P<space>[A-Za-z0-9]+))?"
                   r"_(?P<suffix>[a-z]+(?:-msk)?)\.nii(?:\.gz)?$")


def detect(root: Path) -> bool:
    """True if ``root/derivatives`` (or ``root/raw_data``) holds ``sub-*`` folders with ISLES'24 file names
    (a ``rawdata/`` folder marks the ISLES'22 layout instead, whose derivatives can share some names)."""
    if (root / "rawdata").is_dir():
        return False
    for tree in ("derivatives", "raw_data"):
        base = root / tree
        if not base.is_dir():
            continue
        for sub in (p for p in base.iterdir() if p.is_dir() and p.name.startswith("sub-")):
            for path in sub.rglob("*.nii*"):
                match = _FILE.match(path.name)
                if match and match["suffix"] in SUFFIX_TO_KEY:
                    return True
    return False


def _subject_files(folder: Path, log: ProblemLog) -> dict[str, tuple[Path, str, bool]]:
    """key -> (file, session, in NCCT space by name) of one subject folder (any depth below it)."""
    found: dict[str, tuple[Path, str, bool]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not path.name.endswith(NIFTI_SUFFIXES) or path.name.startswith("."):
            continue
        match = _FILE.match(path.name)
        if not match or match["suffix"] not in SUFFIX_TO_KEY:
            log.note(path, "ignored (not an ISLES'24 image or mask name)")
            continue
        if match["sub"] != folder.name:
            log.add(path, f"belongs to {match['sub']} but lies in {folder.name}")
            continue
        key = SUFFIX_TO_KEY[match["suffix"]]
        ncct_space = match["space"] == "ncct"
        if key in found:
            other, _, other_space = found[key]
            if ncct_space == other_space:
                log.add(path, f"second file for {match['suffix']} (first: {other.name})")
                continue
            if not ncct_space:  # the space-ncct variant wins
                continue
        found[key] = (path, match["ses"], ncct_space)
    return found


def _volume_meta(path: Path, session: str, root: Path) -> dict:
    """The facts a volume carries: its session, its file and its JSON sidecar (the CTP's frame timing)."""
    out: dict = {"session": session, "file": str(path.relative_to(root))}
    sidecar = read_sidecar(path)
    if sidecar is not None:
        out["sidecar"] = sidecar
    return out


def _pattern(path: Path, root: Path, subject: str) -> str:
    return str(path.relative_to(root)).replace(subject, "sub-*")


def _value(text: str) -> Any:
    """A CSV cell as int, float or the stripped string (empty -> None)."""
    text = text.strip()
    if text == "" or text.lower() in ("nan", "na", "n/a"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_clinical(root: Path, subject: str, log: ProblemLog) -> dict[str, dict[str, Any]]:
    """``{session: {column: value}}`` from ``root/phenotype/<subject>/ses-NN/*.csv`` (header + one row)."""
    base = root / "phenotype" / subject
    out: dict[str, dict[str, Any]] = {}
    if not base.is_dir():
        return out
    for path in sorted(base.rglob("*.csv")):
        session = next((part for part in path.relative_to(base).parts if part.startswith("ses-")), "ses-01")
        try:
            rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            log.add(path, f"clinical table is not readable CSV ({exc})")
            continue
        rows = [r for r in rows if any(cell.strip() for cell in r)]
        if len(rows) != 2 or len(rows[0]) != len(rows[1]):
            log.add(path, f"clinical table has {len(rows)} non-empty row(s); expected a header and one row of values")
            continue
        table = out.setdefault(session, {})
        for name, cell in zip(rows[0], rows[1], strict=True):
            if name.strip():
                table[name.strip()] = _value(cell)
    return out


def read(root: Path, meta: DatasetMeta, log: ProblemLog, *, tree: str = "derivatives") -> list[Case]:
    """Read every subject of ``root/<tree>`` as one case (see the module docstring).

    Args:
        tree: ``"derivatives"`` (everything in NCCT space) or ``"raw_data"`` (each acute scan on
            its own grid).
    """
    base = root / tree
    if not base.is_dir():
        hint = ("this reader takes the co-registered derivatives of the release (read raw_data/ alone, each scan "
                f"on its own grid, with --layout {RAW_NAME})") if tree == "derivatives" else "no raw_data/ folder"
        log.add(root, f"no {tree}/ folder: {hint}")
        return []
    taken: dict[str, dict[str, int]] = {}
    cases = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("sub-")):
        with log.guard():
            files = _subject_files(folder, log)
            if tree == "raw_data":
                files = {k: v for k, v in files.items() if v[1] == "ses-01"}  # the follow-up lives in NCCT space
            if "ct" not in files:
                raw = sorted((root / "raw_data" / folder.name).glob(f"ses-*/{folder.name}_ses-*_ncct.nii*")) \
                    if (root / "raw_data" / folder.name).is_dir() else []
                if raw:
                    files["ct"] = (raw[0], _FILE.match(raw[0].name)["ses"], True)
            missing = [] if "ct" in files else ["ncct"]
            if "ctp" not in files:
                missing += [k for k in MAP_KEYS if k not in files]
            if missing:
                log.add(folder, f"missing {', '.join(missing)}" + (" (or the ctp they are computed from)"
                                                                    if set(missing) & set(MAP_KEYS) else ""))
                continue
            for key, (path, _, _) in files.items():
                pattern = taken.setdefault(key, {})
                where = _pattern(path, root, folder.name)
                pattern[where] = pattern.get(where, 0) + 1
            case_id = meta.case_id(folder.name)
            info: dict[str, Any] = {"layout": NAME if tree == "derivatives" else RAW_NAME, "folder": str(folder),
                                    "files": {k: str(v[0].relative_to(root)) for k, v in sorted(files.items())},
                                    "sessions": {k: v[1] for k, v in sorted(files.items())}}
            clinical = read_clinical(root, folder.name, log)
            if clinical:
                info["clinical"] = clinical
            cases.append(case_from_files(
                case_id, meta.subject(case_id, folder.name), {k: v[0] for k, v in files.items()}, where=folder,
                own_grid=set(files) - {"ct"} if tree == "raw_data" else frozenset(), meta=info,
                volume_meta={k: _volume_meta(v[0], v[1], root) for k, v in files.items()}))
    for key in sorted(taken):
        for where, count in sorted(taken[key].items()):
            log.note(key, f"taken from {where} ({count} subject(s))")
    if {"dwi", "adc", "lesion"} & set(taken):
        log.note("ses-02", "dwi, adc and lesion are the follow-up MRI (2-9 days after the CTP): the lesion mask "
                           "is the final infarct, not the acute core")
    return cases


#: strokesynth key -> (session, sub-folder, ISLES'24 suffix) of the written tree
KEY_TO_FILE = {"ct": ("ses-01", "", "ncct"), "cta": ("ses-01", "", "cta"), "ctp": ("ses-01", "", "ctp"),
               "cbf": ("ses-01", "perfusion-maps", "cbf"), "cbv": ("ses-01", "perfusion-maps", "cbv"),
               "mtt": ("ses-01", "perfusion-maps", "mtt"), "tmax": ("ses-01", "perfusion-maps", "tmax"),
               "lvo": ("ses-01", "", "lvo-msk"), "cow": ("ses-01", "", "cow-msk"),
               "dwi": ("ses-02", "", "dwi"), "adc": ("ses-02", "", "adc"), "lesion": ("ses-02", "", "lesion-msk"),
               "anatomy": ("ses-02", "", "dseg")}


def subject_folder(case: Case, unique_subject: bool = True) -> str:
    """The ``sub-...`` folder name of a case: its subject when that is already an ISLES'24 name and
    holds only this case, else ``sub-`` and the letters and digits of the case id (the subject then
    travels in ``strokesynth.json``)."""
    if unique_subject and re.fullmatch(r"sub-[A-Za-z0-9]+", case.subject):
        return case.subject
    name = "sub-" + re.sub(r"[^A-Za-z0-9]", "", case.id.removeprefix("sub-"))
    if name == "sub-":
        raise OutputError(case.where or case.id, f"case id {case.id!r} gives no ISLES'24 folder name")
    return name


def write_case(case: Case, root: Path, sub: str | None = None) -> str:
    """Write one case as one subject of the tree: the NCCT under ``raw_data/`` (it is the reference of
    NCCT space), everything else under ``derivatives/`` with ``space-ncct`` names, sidecars beside
    their images, and ``phenotype/`` from ``case.meta["clinical"]``. Returns the subject folder."""
    unsupported = sorted(set(case.modalities) - set(KEY_TO_FILE))
    if unsupported:
        raise OutputError(case.where or case.id, f"no ISLES'24 file name for {', '.join(unsupported)} "
                                                 f"(it holds {', '.join(KEY_TO_FILE)})")
    if "ct" not in case:
        raise OutputError(case.where or case.id, "an ISLES'24 subject needs its NCCT ('ct')")
    sub = sub or subject_folder(case)
    targets = {}
    for key in case.modalities:
        session, sub_dir, suffix = KEY_TO_FILE[key]
        if key == "ct":
            folder, name = root / "raw_data" / sub / session, f"{sub}_{session}_{suffix}"
        else:
            folder, name = root / "derivatives" / sub / session / sub_dir, f"{sub}_{session}_space-ncct_{suffix}"
        targets[key] = folder / f"{name}.nii.gz"
        side = case[key].meta.get("sidecar")
        if side is not None:
            write_json_atomic(folder / f"{name}.json", side)
    write_case_volumes(case, targets)
    for session, table in sorted((case.meta.get("clinical") or {}).items()):
        path = root / "phenotype" / sub / session / f"{sub}_{session}_clinical.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(table))
            writer.writerow(["" if v is None else v for v in table.values()])
    return sub


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Write ``cases`` as an ISLES'24 tree, one subject folder per case (see :func:`write_case` and
    :func:`subject_folder`)."""
    per_subject: dict[str, int] = {}
    for case in cases:
        per_subject[case.subject] = per_subject.get(case.subject, 0) + 1
    used: set[str] = set()
    for case in cases:
        sub = subject_folder(case, per_subject[case.subject] == 1)
        if sub in used:
            raise OutputError(case.where or case.id, f"two cases map to the subject folder {sub}")
        used.add(sub)
        write_case(case, root, sub)
        if sub != case.id:
            meta.case_ids[sub] = case.id
        meta.subjects[case.id] = case.subject
