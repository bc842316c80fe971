"""One cross-validation runner for every recipe: folds from one owner of the splits, the seed rule
once, the fold loop's :func:`~strokesynth.engine.loop.fit`, the kept model loaded and applied to
the held-out fold; and the holdout protocol of the label-map paper (:func:`train_holdout`).

For each fold ``k`` of a subject-level split the runner takes the fold's train / select / test
cases under the run's selection protocol (:func:`~strokesynth.engine.protocol.fold_sets`),
builds the two datasets, trains with the seed :func:`fold_seed` into ``folder(k)``, then hands
the held-out cases and the fold's folder (``best.pt``: the kept model) to ``predict``. What a
recipe does with them (write generated DWI, score masks, ...) is its own; which cases train,
which choose and which are scored, and with which seed, is decided here only::

    outcomes = cross_validate(cases, splits, cfg.run, lambda k: run.file(f"fold_{k}"),
                              build=lambda train: Segmenter(cfg, train_dataset=train),
                              datasets=lambda cases, train: make_dataset(cases, cfg.data, train=train),
                              predict=lambda fold, test: score(fold.kept(), test))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from strokesynth.data.case import Case
from strokesynth.data.splits import Splits, load_splits, random_holdout, subject_kfold
from strokesynth.engine.checkpoint import load_system
from strokesynth.engine.config import RunConfig
from strokesynth.engine.loop import fit
from strokesynth.engine.protocol import FoldSets, fold_sets
from strokesynth.engine.system import Dist, System
from strokesynth.runs import RunDir


def fold_seed(seed: int, fold: int) -> int:
    """The seed of fold ``fold``'s training: the run's ``seed`` + 1000 x ``fold``, so that folds
    differ and adding a fold changes no other fold (the rule of every recipe)."""
    return seed + 1000 * fold


def run_splits(run: RunDir, cases: list[Case], folds: int, seed: int, *, given: Splits | None = None,
               save: bool = True) -> Splits:
    """The subject-level splits of a run, from their one owner: the run's ``splits.json`` when it
    has one (a resumed run keeps its folds), else ``given`` (folds imposed by another run), else
    :func:`~strokesynth.data.splits.subject_kfold` of ``cases`` (``folds``, ``seed``); saved to
    ``splits.json`` (``save``: by the main process only)."""
    path = run.file("splits.json")
    if path.exists():
        return load_splits(path, cases)
    splits = given if given is not None else subject_kfold(cases, folds, seed)
    if save:
        splits.save(path)
    return splits


def open_run(out: str | os.PathLike, cfg: Any, cases: list[Case], *, force: bool = False, resume: bool = False
             ) -> tuple[RunDir, Splits]:
    """The run folder of a multi-model experiment and its subject-level splits (``cfg.folds``,
    ``cfg.seed``): created with ``cfg`` saved, or reopened with its saved splits on ``resume``.
    Call it only after every input is checked, so bad input leaves no folder behind."""
    fresh = None if resume else subject_kfold(cases, cfg.folds, cfg.seed)  # too few subjects: refused before
    if resume:                                                             # any folder is made
        run = RunDir.reopen(out)
    else:
        run = RunDir.create(out, force=force)
        run.save_config(cfg)
    return run, run_splits(run, cases, cfg.folds, cfg.seed, given=fresh)


@dataclass
class FoldOutcome:
    """One trained fold.

    Attributes:
        fold: its index.
        sets: the case ids that trained, chose and are scored (``test``: the held-out fold).
        folder: where its checkpoints are (``best.pt``: the kept model, ``last.pt``).
        result: what :func:`~strokesynth.engine.loop.fit` returned, without the system (``epochs``,
            ``best_epoch``, ``best``, ``stopped_early``, ``history``, ...).
        train_size: samples in its training dataset.
        predictions: what ``predict`` returned for it (``None`` without one).
    """

    fold: int
    sets: FoldSets
    folder: Path
    result: dict[str, Any]
    train_size: int
    predictions: Any = None
    test_cases: list[Case] = field(default_factory=list)

    def kept(self, which: str = "networks") -> System:
        """The kept model of this fold (``best.pt``), loaded (``weights_only``)."""
        return load_system(self.folder / "best.pt", which=which)


def cross_validate(cases: list[Case], splits: Splits, run: RunConfig, folder: Callable[[int], Path], *,
                   build: Callable[[Dataset], System], datasets: Callable[[list[Case], bool], Dataset],
                   predict: Callable[[FoldOutcome, list[Case]], Any] | None = None,
                   before: Callable[[int, FoldSets], None] | None = None,
                   after: Callable[[FoldOutcome], None] | None = None,
                   folds: Sequence[int] | None = None, seed: int | None = None, log: logging.Logger | None = None,
                   dist: Dist | None = None, desc: str = "fold") -> list[FoldOutcome]:
    """Train and apply every fold (``folds``, default ``run.fold_list()``), in order.

    Args:
        cases: the cohort (every fold's cases are taken from it by id).
        splits: the subject-level folds (:func:`open_run` or a run's ``splits.json``).
        run: the training settings (selection protocol, seed, epochs, device, ...).
        folder: fold index -> its checkpoint folder (created).
        build: the training dataset -> a new system (called after seeding).
        datasets: ``(cases, train)`` -> a dataset (``train=False``: the selection set).
        predict: ``(outcome, held-out cases)`` -> anything (per-case rows, written files).
        before, after: called before a fold trains and after it is applied (progress lines).
        seed: the base of :func:`fold_seed` (default ``run.seed``; an experiment that trains several
            systems on the same folds passes its own).
        desc: the progress prefix (``"<desc> <k>"``).

    Returns:
        one :class:`FoldOutcome` per fold.
    """
    by_id = {c.id: c for c in cases}
    out = []
    for k in folds if folds is not None else run.fold_list():
        fold_dir = folder(k)
        fold_dir.mkdir(parents=True, exist_ok=True)
        sets = fold_sets(cases, splits, k, run)
        if before is not None:
            before(k, sets)
        train = datasets([by_id[c] for c in sets.train], True)
        select = datasets([by_id[c] for c in sets.select], False) if sets.select else None
        result = fit(lambda train=train: build(train), train, select, fold_dir, run,
                     seed=fold_seed(run.seed if seed is None else seed, k),
                     log=log, dist=dist, desc=f"{desc} {k}")
        result.pop("system")
        outcome = FoldOutcome(k, sets, fold_dir, result, len(train), test_cases=[by_id[c] for c in sets.test])
        if predict is not None:
            outcome.predictions = predict(outcome, outcome.test_cases)
        if after is not None:
            after(outcome)
        out.append(outcome)
    return out


#: the fold index a holdout outcome carries (it is no fold of a k-fold split)
HOLDOUT = -1


def train_holdout(train_cases: Sequence[Case], test_cases: Sequence[Case], run: RunConfig, folder: Path, *,
                  build: Callable[[Dataset], System], datasets: Callable[[list[Case], bool], Dataset],
                  seed: int, split_seed: int | None = None,
                  predict: Callable[[FoldOutcome, list[Case]], Any] | None = None,
                  log: logging.Logger | None = None, dist: Dist | None = None, desc: str = "holdout") -> FoldOutcome:
    """The holdout protocol (Platscher et al.'s label-map experiment): a fixed test set that no
    model sees in training, and per model one random split of its training cases into training
    and an early-stopping selection set (``run.inner_fraction`` of them, at least one, drawn at
    ``split_seed``, default ``seed``: :func:`~strokesynth.data.splits.random_holdout`).

    Trains with ``seed`` into ``folder`` (the kept model in ``best.pt``) and hands the test cases
    to ``predict``. Returns a :class:`FoldOutcome` with fold :data:`HOLDOUT`.
    """
    train, select = random_holdout(list(train_cases), run.inner_fraction, seed if split_seed is None else split_seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train_ds = datasets(train, True)
    result = fit(lambda: build(train_ds), train_ds, datasets(select, False), folder, run, seed=seed, log=log,
                 dist=dist, desc=desc)
    result.pop("system")
    sets = FoldSets(tuple(c.id for c in train), tuple(c.id for c in select), tuple(c.id for c in test_cases),
                    "holdout")
    outcome = FoldOutcome(HOLDOUT, sets, folder, result, len(train_ds), test_cases=list(test_cases))
    if predict is not None:
        outcome.predictions = predict(outcome, outcome.test_cases)
    return outcome
