"""ISLES'24 ``raw_data/`` read on its own: the acute scans each on its own grid (layout ``isles24-raw``).

The NCCT is the reference; the CTP with its perfusion maps and the CTA keep their native
geometry (``own_grid``), so a perfusion analysis runs on the CTP as acquired. The follow-up DWI,
ADC and the masks exist only in NCCT space (``derivatives/``): read them with layout ``isles24``.
Never detected automatically (a release holds both trees; ``isles24`` is the default).
"""

from __future__ import annotations

from pathlib import Path

from strokesynth.data.case import Case
from strokesynth.errors import OutputError
from strokesynth.io import isles24
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.problems import ProblemLog

NAME = isles24.RAW_NAME


def detect(root: Path) -> bool:
    """Never: ask for this layout with ``--layout isles24-raw``."""
    return False


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Every subject of ``root/raw_data`` (session 1) as one case, each scan on its own grid."""
    return isles24.read(root, meta, log, tree="raw_data")


def write(cases: list[Case], root: Path, meta: DatasetMeta) -> None:
    """Not supported: write ``isles24`` (the NCCT-space tree) instead."""
    raise OutputError(root, "the raw_data tree is not written; write the isles24 layout (NCCT space) instead")
