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
``lvo-msk`` -> ``lvo``, ``cow-msk`` -> ``cow``. Every volume carries its session in
``meta["session"]``, every case its files in ``meta["files"]``.

A case needs its acute imaging: the NCCT and the raw CTP or all four maps (the maps a case lacks
are computed from its CTP where a command needs them). Not read yet: ``raw_data`` as its own
layout (each scan on its own grid), the clinical tables of ``phenotype/``; not written.
"""

from __future__ import annotations

import re
from pathlib import Path

from strokesynth.data.case import Case
from strokesynth.errors import OutputError
from strokesynth.io.case_files import case_from_files
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.nifti import NIFTI_SUFFIXES, read_sidecar
from strokesynth.io.problems import ProblemLog

NAME = "isles24"

#: ISLES'24 file suffix -> strokesynth key.
SUFFIX_TO_KEY = {"ncct": "ct", "cta": "cta", "ctp": "ctp", "cbf": "cbf", "cbv": "cbv", "mtt": "mtt", "tmax": "tmax",
                 "dwi": "dwi", "adc": "adc", "lesion-msk": "lesion", "lvo-msk": "lvo", "cow-msk": "cow"}
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


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Read every subject of ``root/derivatives`` as one case (see the module docstring)."""
    base = root / "derivatives"
    if not base.is_dir():
        log.add(root, "no derivatives/ folder: this reader takes the co-registered derivatives of the release "
                      "(raw_data/ alone, each scan on its own grid, is not read yet)")
        return []
    taken: dict[str, dict[str, int]] = {}
    cases = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("sub-")):
        with log.guard():
            files = _subject_files(folder, log)
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
            cases.append(case_from_files(
                case_id, meta.subject(case_id, folder.name), {k: v[0] for k, v in files.items()}, where=folder,
                meta={"layout": NAME, "folder": str(folder),
                      "files": {k: str(v[0].relative_to(root)) for k, v in sorted(files.items())},
                      "sessions": {k: v[1] for k, v in sorted(files.items())}},
                volume_meta={k: _volume_meta(v[0], v[1], root) for k, v in files.items()}))
    for key in sorted(taken):
        for where, count in sorted(taken[key].items()):
            log.note(key, f"taken from {where} ({count} subject(s))")
    return cases


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Not supported yet: convert ISLES'24 data to another layout instead."""
    raise OutputError(root, "writing the ISLES'24 layout is not supported yet (write plain, isles22 or nnunet)")
