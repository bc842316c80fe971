"""Subject-level K-fold cross-validation splits, deterministic from a seed, saved as JSON.

Cases of one subject (e.g. two ISLES 2018 slabs of one patient) always land in the same fold.
Subjects are shuffled with the seed and then dealt greedily to the fold with the fewest cases
so far, so folds are balanced in cases, not only in subjects.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strokesynth._fs import write_json_atomic
from strokesynth.data.case import Case, cases_by_subject
from strokesynth.errors import ConfigError, DataError

FORMAT = "strokesynth-splits/1"


@dataclass(frozen=True)
class Fold:
    """One fold: the cases held out for validation; the rest train.

    Attributes:
        index: fold number, 0..k-1.
        val_cases: held-out case ids.
        val_subjects: their subjects.
        train_cases: all other case ids.
    """

    index: int
    val_cases: tuple[str, ...]
    val_subjects: tuple[str, ...]
    train_cases: tuple[str, ...]


@dataclass(frozen=True)
class Splits:
    """K folds over a set of cases, with the seed that made them."""

    k: int
    seed: int
    folds: tuple[Fold, ...]
    subjects: dict[str, str]  # case id -> subject

    def fold_of(self, case_id: str) -> int:
        """Index of the fold that holds ``case_id`` out."""
        for fold in self.folds:
            if case_id in fold.val_cases:
                return fold.index
        raise KeyError(case_id)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "k": self.k,
            "seed": self.seed,
            "folds": [
                {"fold": f.index, "val_subjects": list(f.val_subjects), "val_cases": list(f.val_cases)}
                for f in self.folds
            ],
            "subjects": dict(sorted(self.subjects.items())),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the splits as JSON, atomically."""
        write_json_atomic(path, self.to_json())


def subject_kfold(cases: list[Case], k: int = 5, seed: int = 0) -> Splits:
    """Split ``cases`` into ``k`` folds by subject.

    Raises:
        ConfigError: fewer subjects than folds, or ``k < 2``.
    """
    if k < 2:
        raise ConfigError("folds", f"need at least 2 folds, got {k}")
    groups = cases_by_subject(cases)
    if len(groups) < k:
        raise ConfigError("folds", f"{len(groups)} subject(s) cannot fill {k} folds")
    subjects = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(subjects))
    sizes = [0] * k
    members: list[list[str]] = [[] for _ in range(k)]
    # largest subjects first (stable within the shuffled order) keeps folds even
    shuffled = [subjects[i] for i in order]
    shuffled.sort(key=lambda s: -len(groups[s]))
    for subject in shuffled:
        target = int(np.argmin(sizes))
        members[target].append(subject)
        sizes[target] += len(groups[subject])
    return _build(k, seed, members, {c.id: c.subject for c in cases})


def _build(k: int, seed: int, members: list[list[str]], subjects: dict[str, str]) -> Splits:
    all_ids = sorted(subjects)
    folds = []
    for i, subs in enumerate(members):
        subset = set(subs)
        val = tuple(sorted(c for c in all_ids if subjects[c] in subset))
        train = tuple(c for c in all_ids if subjects[c] not in subset)
        folds.append(Fold(i, val, tuple(sorted(subs)), train))
    return Splits(k, seed, tuple(folds), dict(subjects))


def load_splits(path: str | os.PathLike, cases: list[Case] | None = None) -> Splits:
    """Read splits saved by :meth:`Splits.save`, checking them (and, if given, against ``cases``).

    Raises:
        DataError: malformed file, a subject in two folds, or ids that do not match ``cases``.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        k, seed = int(raw["k"]), int(raw["seed"])
        subjects = {str(a): str(b) for a, b in raw["subjects"].items()}
        members = [[str(s) for s in f["val_subjects"]] for f in sorted(raw["folds"], key=lambda f: f["fold"])]
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"not a strokesynth splits file ({type(exc).__name__}: {exc})") from None
    if len(members) != k:
        raise DataError(path, f"says k={k} but lists {len(members)} folds")
    seen: dict[str, int] = {}
    for i, subs in enumerate(members):
        for s in subs:
            if s in seen:
                raise DataError(path, f"subject {s!r} is in folds {seen[s]} and {i}")
            seen[s] = i
    missing = sorted(set(subjects.values()) - set(seen))
    if missing:
        raise DataError(path, f"subject(s) {', '.join(missing[:5])} are in no fold")
    if cases is not None:
        now = {c.id: c.subject for c in cases}
        if now != subjects:
            extra = sorted(set(now) - set(subjects))
            gone = sorted(set(subjects) - set(now))
            moved = sorted(c for c in set(now) & set(subjects) if now[c] != subjects[c])
            raise DataError(
                path,
                f"splits do not match the data set (new cases: {extra[:3]}, missing cases: {gone[:3]}, "
                f"changed subjects: {moved[:3]})",
            )
    return _build(k, seed, members, subjects)


def inner_split(splits: Splits, fold: int, fraction: float = 0.2, seed: int = 0,
                lesion_cases: set[str] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split fold ``fold``'s *training* cases by subject into (train, selection) case ids.

    The selection cases choose checkpoints, thresholds and early stopping, so the fold's held-out
    cases are scored by a model that never saw them in any choice. ``round(fraction * n)`` of
    the n training subjects (at least one) are drawn with ``(seed, fold)``, stratified by
    lesion presence when ``lesion_cases`` is given: the lesion and lesion-free subjects each
    contribute their share, with at least one lesion subject, so the selection score can
    reward finding lesions.

    Raises:
        ConfigError: fewer than two training subjects.
    """
    f = splits.folds[fold]
    by_subject: dict[str, list[str]] = {}
    for c in f.train_cases:
        by_subject.setdefault(splits.subjects[c], []).append(c)
    subjects = sorted(by_subject)
    if len(subjects) < 2:
        raise ConfigError("selection", f"fold {fold} has {len(subjects)} training subject(s); inner selection needs 2")
    rng = np.random.default_rng([seed, fold, 104729])
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    if lesion_cases is None:
        groups = [order]
    else:
        groups = [[s for s in order if any(c in lesion_cases for c in by_subject[s])],
                  [s for s in order if not any(c in lesion_cases for c in by_subject[s])]]
    chosen: list[str] = []
    for i, group in enumerate(groups):
        take = int(round(fraction * len(group)))
        if i == 0 and group:
            take = max(take, 1)
        chosen.extend(group[:take])
    if not chosen:
        chosen = order[:1]
    if len(chosen) == len(subjects):
        chosen = chosen[:-1]
    sel = set(chosen)
    train = tuple(c for c in f.train_cases if splits.subjects[c] not in sel)
    select = tuple(c for c in f.train_cases if splits.subjects[c] in sel)
    return train, select


def holdout_split(ids: list[str], fraction: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """A single hold-out split (the label-map paper's protocol: one test set of stroke subjects and
    one of healthy subjects, drawn one after the other from the same ``rng``): ``(train, test)``,
    both sorted, with ``round(fraction * n)`` ids (at least one) held out. ``ids`` are subjects."""
    ids = sorted(ids)
    rng.shuffle(ids)
    n_test = max(1, int(round(fraction * len(ids))))
    return sorted(ids[n_test:]), sorted(ids[:n_test])


def random_holdout(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """``(train, validation)``: ``round(fraction * n)`` items (at least one) drawn at ``seed`` for early
    stopping, in a random order; the rest, in a random order, train."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(items))
    n_val = max(1, int(round(fraction * len(items))))
    return [items[i] for i in idx[n_val:]], [items[i] for i in idx[:n_val]]
