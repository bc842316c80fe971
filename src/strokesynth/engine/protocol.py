"""Which cases train, which choose the checkpoint, which are scored: the selection protocols.

For fold k of a subject-level cross-validation the scored (test) cases are fold k's held-out
cases. The checkpoint (and anything else chosen during training) comes from:

- ``inner`` (default): an inner split of fold k's *training* subjects (stratified by lesion
  presence), which then does not train; honest.
- ``last``: the last epoch; every training subject trains; honest.
- ``heldout``: the scored cases themselves, as in the papers' tables; optimistic, and every
  report labels it so.
"""

from __future__ import annotations

from dataclasses import dataclass

from strokesynth.data.case import Case
from strokesynth.data.splits import Splits, inner_split
from strokesynth.engine.config import RunConfig
from strokesynth.metrics.tables import PROTOCOLS  # noqa: F401 - the protocols' meaning, kept with the tables


@dataclass(frozen=True)
class FoldSets:
    """Case ids of one fold: ``train`` (weights), ``select`` (choices; empty for ``last``), ``test`` (scored)."""

    train: tuple[str, ...]
    select: tuple[str, ...]
    test: tuple[str, ...]
    protocol: str


def fold_sets(cases: list[Case], splits: Splits, fold: int, run: RunConfig) -> FoldSets:
    """The train / select / test case ids of ``fold`` under ``run.selection``."""
    f = splits.folds[fold]
    if run.selection == "last":
        return FoldSets(f.train_cases, (), f.val_cases, "last")
    if run.selection == "heldout":
        return FoldSets(f.train_cases, f.val_cases, f.val_cases, "heldout")
    lesion = {c.id for c in cases if c.label is not None and bool((c.label.array > 0).any())}
    train, select = inner_split(splits, fold, run.inner_fraction, run.seed, lesion)
    return FoldSets(train, select, f.val_cases, "inner")
