"""`strokesynth check`: an integrity report of a data set, after nnU-Net's dataset verification.

The report lists cases and subjects, which modalities each case has or lacks, shapes,
spacings and slice counts, lesion volumes in ml, and every problem found. Structural checks
come from the headers (fast); with ``deep=True`` every file is read once to find NaN/Inf,
truncated data and labels that are not 0/1.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth.data.case import LABEL_KEY
from strokesynth.errors import DataError
from strokesynth.io.cohort import open_cohort


@dataclass
class CaseSummary:
    """One row of the report."""

    id: str
    subject: str
    modalities: list[str]
    shape: list[int]
    spacing_mm: list[float]
    slices: int
    frames: int | None
    lesion_ml: float | None
    impossible: dict[str, int] = field(default_factory=dict)


@dataclass
class IntegrityReport:
    """Everything ``check`` found; ``ok`` is true when ``problems`` is empty."""

    root: str
    layout: str
    cases: list[CaseSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.cases})

    def modality_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.cases:
            for m in c.modalities:
                counts[m] = counts.get(m, 0) + 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["n_cases"] = len(self.cases)
        out["n_subjects"] = len(self.subjects)
        out["modality_counts"] = self.modality_counts()
        return out


#: Perfusion maps that cannot be negative (ml/100 g/min, ml/100 g, s, s).
NON_NEGATIVE = ("cbf", "cbv", "mtt", "tmax")


def check_dataset(root: str | os.PathLike, *, layout: str = "auto", deep: bool = True) -> IntegrityReport:
    """Read ``root`` collecting problems; raises only if no layout fits at all."""
    cohort = open_cohort(root, layout=layout, strict=False)
    report = IntegrityReport(str(Path(root)), cohort.layout, problems=list(cohort.problems), notes=list(cohort.notes))
    for case in cohort.cases:
        lesion_ml = None
        impossible: dict[str, int] = {}
        if deep:
            for key in sorted(case.modalities):
                vol = case[key]
                try:
                    # a 4D scan is read in its stored dtype (an int16 CTP: half the memory of float32)
                    arr = vol.stored()[0] if vol.ndim == 4 else vol.array
                except DataError as exc:
                    report.problems.append(exc.one_line())
                    continue
                if key in NON_NEGATIVE:
                    n_bad = int(np.count_nonzero(arr < 0))
                    if n_bad:
                        impossible[key] = n_bad
                        report.notes.append(f"{vol.path or case.id}: {n_bad} voxel(s) ({100 * n_bad / arr.size:.2f} % "
                                            f"of the volume) negative, which is physically impossible for {key}")
                if key == LABEL_KEY:
                    values = np.unique(arr)
                    if not set(values.tolist()) <= {0, 1}:
                        shown = ", ".join(str(v) for v in values[:6])
                        report.problems.append(f"{vol.path or case.id}: lesion mask holds values {shown}; expected 0/1")
                    lesion_ml = float(np.count_nonzero(arr)) * vol.voxel_volume_ml
                    if lesion_ml == 0:
                        report.notes.append(f"{case.id}: lesion mask is empty (no lesion)")
        ref = case.reference
        frames = max((v.shape[3] for v in case.modalities.values() if v.ndim == 4), default=None)
        report.cases.append(
            CaseSummary(
                id=case.id,
                subject=case.subject,
                modalities=sorted(case.modalities),
                shape=list(ref.spatial_shape),
                spacing_mm=[round(s, 4) for s in ref.spacing],
                slices=ref.spatial_shape[2],
                frames=frames,
                lesion_ml=None if lesion_ml is None else round(lesion_ml, 3),
                impossible=impossible,
            )
        )
    report.notes.extend(clinical_summary(cohort.cases))
    all_mods = sorted({m for c in report.cases for m in c.modalities})
    for c in report.cases:
        lacking = [m for m in all_mods if m not in c.modalities]
        if lacking and lacking != [LABEL_KEY]:
            report.notes.append(f"{c.id}: lacks {', '.join(lacking)} that other cases have")
    return report


def clinical_summary(cases: list) -> list[str]:
    """One line per clinical variable of ``case.meta["clinical"]`` (ISLES'24 ``phenotype/``): how many
    subjects have it and its median and range (numbers) or its counts (categories)."""
    values: dict[str, list] = {}
    with_tables = 0
    for case in cases:
        tables = case.meta.get("clinical") or {}
        with_tables += bool(tables)
        for session, table in sorted(tables.items()):
            for name, value in table.items():
                if value is not None:
                    values.setdefault(f"{session} {name}", []).append(value)
    if not values:
        return []
    lines = [f"clinical tables: {with_tables}/{len(cases)} subject(s)"]
    for name, vals in sorted(values.items()):
        numbers = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) == len(vals):
            lines.append(f"clinical {name}: n={len(vals)}, median {np.median(numbers):.4g}, "
                         f"range {min(numbers):.4g}-{max(numbers):.4g}")
        else:
            counts: dict[str, int] = {}
            for v in vals:
                counts[str(v)] = counts.get(str(v), 0) + 1
            shown = ", ".join(f"{k}: {c}" for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
            lines.append(f"clinical {name}: n={len(vals)}, {shown}")
    return lines


def _range(values: list[float]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    med = float(np.median(values))
    return f"{lo:.4g}" if lo == hi else f"{lo:.4g}-{hi:.4g} (median {med:.4g})"


def format_report(report: IntegrityReport) -> str:
    """The report as text for the terminal."""
    lines = [
        f"data set  {report.root}",
        f"layout    {report.layout}",
        f"cases     {len(report.cases)}   subjects {len(report.subjects)}",
    ]
    counts = report.modality_counts()
    n = len(report.cases)
    if counts:
        lines.append("modalities " + "  ".join(f"{m}:{c}/{n}" for m, c in counts.items()))
    if report.cases:
        lines.append(f"slices    {_range([c.slices for c in report.cases])}")
        for axis, name in enumerate("xyz"):
            lines.append(f"spacing {name} {_range([c.spacing_mm[axis] for c in report.cases])} mm")
        frames = [c.frames for c in report.cases if c.frames]
        if frames:
            lines.append(f"frames    {_range(frames)}")
        lesions = [c.lesion_ml for c in report.cases if c.lesion_ml is not None]
        if lesions:
            lines.append(f"lesion ml {_range(lesions)}   without lesion: {sum(1 for v in lesions if v == 0)}")
        lines.append("")
        header = f"{'case':<28} {'subject':<20} {'shape':<16} {'spacing mm':<20} {'lesion ml':>9}  modalities"
        lines.append(header)
        for c in report.cases:
            shape = "x".join(map(str, c.shape)) + (f"x{c.frames}t" if c.frames else "")
            spacing = "x".join(f"{s:.3g}" for s in c.spacing_mm)
            les = "-" if c.lesion_ml is None else f"{c.lesion_ml:.2f}"
            lines.append(f"{c.id:<28} {c.subject:<20} {shape:<16} {spacing:<20} {les:>9}  {','.join(c.modalities)}")
    if report.notes:
        lines.append("")
        lines.append(f"notes ({len(report.notes)})")
        lines.extend(f"  - {note}" for note in report.notes)
    lines.append("")
    if report.problems:
        lines.append(f"PROBLEMS ({len(report.problems)})")
        lines.extend(f"  - {p}" for p in report.problems)
    else:
        lines.append("no problems found")
    return "\n".join(lines)
