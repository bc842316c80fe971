"""Open and write whole data sets in any supported layout.

A :class:`Cohort` is the list of cases a layout reader found, with the problems and notes it
met. :func:`open_cohort` detects the layout; :func:`write_cohort` writes any cohort in any
layout atomically (the destination appears complete or not at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from strokesynth._fs import atomic_dir
from strokesynth.data.case import Case, cases_by_subject
from strokesynth.errors import DataError, OutputError
from strokesynth.io import isles22, isles24, isles24_raw, isles2018, nnunet, plain
from strokesynth.io.case_files import case_from_files, check_unique
from strokesynth.io.dataset_meta import DatasetMeta, read_meta, write_meta
from strokesynth.io.nifti import is_nifti_name, strip_nifti_suffix
from strokesynth.io.problems import ProblemLog

#: Layouts in detection order (the most specific first).
LAYOUTS: dict[str, ModuleType] = {
    nnunet.NAME: nnunet,
    isles24.NAME: isles24,
    isles24_raw.NAME: isles24_raw,
    isles22.NAME: isles22,
    isles2018.NAME: isles2018,
    plain.NAME: plain,
}


@dataclass
class Cohort:
    """The cases of one data set.

    Attributes:
        root: the data set folder.
        layout: the layout name it was read with.
        cases: the cases, in the layout's order.
        problems: one-line problems (only filled when read with ``strict=False``).
        notes: remarks such as ignored files.
    """

    root: Path
    layout: str
    cases: list[Case]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __getitem__(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise DataError(self.root, f"no case with id {case_id!r}")

    @property
    def subjects(self) -> dict[str, list[Case]]:
        """Subject id -> its cases."""
        return dict(cases_by_subject(self.cases))

    def require(self, keys: Iterable[str]) -> None:
        """Raise naming the first case that lacks one of ``keys``."""
        keys = list(keys)
        for case in self.cases:
            case.require(keys)


def detect_layout(root: Path) -> str:
    """Name of the layout of ``root``, or raise a :class:`DataError` saying why none fits."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "folder not found")
    if not root.is_dir():
        raise DataError(root, "not a folder (expected a data set folder)")
    try:
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    except PermissionError:
        raise DataError(root, "folder cannot be read (permission denied)") from None
    if not entries:
        raise DataError(root, "empty folder: no cases found")
    for name, module in LAYOUTS.items():
        if module.detect(root):
            return name
    raise DataError(
        root,
        "no known layout (ISLES 2018 case_N/SMIR.*, ISLES'22 rawdata/, ISLES'24 derivatives/sub-*/ses-0N/, "
        "nnU-Net dataset.json + imagesTr/, "
        "or plain CASE/<modality>.nii.gz)",
    )


def open_cohort(
    root: str | os.PathLike,
    *,
    layout: str = "auto",
    strict: bool = True,
    require: Iterable[str] | None = None,
    derived: Iterable[str | os.PathLike] = (),
) -> Cohort:
    """Read a data set lazily (headers only).

    Args:
        root: the data set folder.
        layout: ``"auto"`` or one of :data:`LAYOUTS`.
        strict: raise on the first problem; with ``False`` problems are collected in the result.
        require: modality keys every case must have.
        derived: folders of derived volumes to add (see :func:`attach_derived`).

    Raises:
        DataError: naming the file or folder and the problem (strict mode).
    """
    root = Path(root)
    name = detect_layout(root) if layout == "auto" else layout
    if name not in LAYOUTS:
        raise DataError(None, f"unknown layout {layout!r} (choose from auto, {', '.join(LAYOUTS)})")
    if layout != "auto" and not root.is_dir():
        raise DataError(root, "not a folder")
    log = ProblemLog(strict=strict)
    meta = DatasetMeta()
    with log.guard():
        meta = read_meta(root)
    cases = LAYOUTS[name].read(root, meta, log)
    if not cases and not log.problems:
        log.add(root, f"no cases found in the {name} layout")
    with log.guard():
        check_unique([c.id for c in cases], root)
    for folder in derived:
        cases = attach_derived(cases, folder)
    if require:
        keys = list(require)
        for case in cases:
            with log.guard():
                case.require(keys)
    return Cohort(root, name, cases, log.problems, log.notes)


def attach_derived(cases: list[Case], folder: str | os.PathLike) -> list[Case]:
    """Add the volumes of ``FOLDER/<case id>/<key>.nii[.gz]`` to the cases with that id.

    Derived volumes (a synthesised DWI, say) live outside the data set, which stays read-only.
    Each must be on its case's grid (checked from the headers, as for any case). A case
    without a folder is left as it is (``require`` catches it if the key is needed); a folder
    whose case id is not in ``cases``, or a key the case already has, is an error.

    Raises:
        DataError: naming the folder or file and the problem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "derived-volumes folder not found")
    by_id = {c.id: c for c in cases}
    extra: dict[str, dict[str, Path]] = {}
    for case_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if case_dir.name not in by_id:
            raise DataError(case_dir, "derived volumes for a case that is not in the data set")
        files = {strip_nifti_suffix(f.name): f for f in sorted(case_dir.iterdir()) if is_nifti_name(f)}
        for key, path in files.items():
            if key in by_id[case_dir.name]:
                raise DataError(path, f"case {case_dir.name} already has {key!r}")
        extra[case_dir.name] = files
    if not extra:
        raise DataError(folder, "holds no <case id>/<modality>.nii.gz volumes")
    out = []
    for case in cases:
        if case.id not in extra:
            out.append(case)
            continue
        added = case_from_files(case.id, case.subject, extra[case.id], where=folder / case.id)
        out.append(Case(case.id, case.subject, {**case.modalities, **added.modalities}, own_grid=case.own_grid,
                        meta={**case.meta, "derived": [*case.meta.get("derived", []), str(folder)]},
                        where=case.where))
    return out


def write_cohort(
    cases: Iterable[Case],
    dest: str | os.PathLike,
    *,
    layout: str = "plain",
    force: bool = False,
    modalities: list[str] | None = None,
    extra: Callable[[Path], None] | None = None,
    folds: int = 5,
    seed: int = 0,
    notes: list[str] | None = None,
) -> Path:
    """Write ``cases`` to ``dest`` in ``layout``; nothing appears at ``dest`` unless all succeed.

    Args:
        modalities: keys to write (default: all of each case; for nnU-Net the common 3D images).
        force: replace an existing non-empty ``dest``.
        extra: called with the temporary folder to add files beside the layout (written
            atomically with it).
        folds, seed: subject-level folds written with the data where the layout has a place for
            them (nnU-Net's ``splits_final.json``).
        notes: receives one line per remark (channels chosen, modalities left out).
    """
    if layout not in LAYOUTS:
        raise OutputError(None, f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    cases = list(cases)
    if not cases:
        raise OutputError(dest, "no cases to write")
    check_unique([c.id for c in cases], dest)
    if modalities and layout != nnunet.NAME:
        keep = list(modalities)
        if any(c.label is not None for c in cases) and "lesion" not in keep:
            keep.append("lesion")
        cases = [c.select([k for k in keep if k in c or k != "lesion"]) for c in cases]
    dest = Path(dest)
    meta = DatasetMeta()
    with atomic_dir(dest, force=force) as tmp:
        if layout == nnunet.NAME:
            nnunet.write(cases, tmp, meta, modalities, name=dest.name, folds=folds, seed=seed, notes=notes)
        else:
            LAYOUTS[layout].write(cases, tmp, meta)
        meta.subjects = {k: v for k, v in meta.subjects.items() if k != v}
        meta.own_grid = sorted(set().union(*(c.own_grid for c in cases)))
        write_meta(tmp, meta)
        if extra is not None:
            extra(tmp)
    return dest
