import json

import pytest

from strokesynth.data.splits import load_splits, subject_kfold
from strokesynth.errors import ConfigError, DataError


def test_no_subject_in_two_folds_and_deterministic(toy_cases, tmp_path):
    splits = subject_kfold(toy_cases, k=3, seed=7)
    seen = {}
    for fold in splits.folds:
        assert set(fold.val_cases).isdisjoint(fold.train_cases)
        assert set(fold.val_cases) | set(fold.train_cases) == {c.id for c in toy_cases}
        for case_id in fold.val_cases:
            subject = splits.subjects[case_id]
            assert seen.setdefault(subject, fold.index) == fold.index
    assert sorted(c for f in splits.folds for c in f.val_cases) == sorted(c.id for c in toy_cases)
    assert subject_kfold(toy_cases, k=3, seed=7) == splits
    sizes = [len(f.val_cases) for f in splits.folds]
    assert max(sizes) - min(sizes) <= 2
    path = tmp_path / "splits.json"
    splits.save(path)
    assert load_splits(path, toy_cases) == splits
    assert splits.fold_of(toy_cases[0].id) in range(3)


def test_seed_changes_assignment(toy_cases):
    a = subject_kfold(toy_cases, k=2, seed=0)
    assert any(subject_kfold(toy_cases, k=2, seed=s).folds != a.folds for s in range(1, 6))


def test_bad_splits(toy_cases, tmp_path):
    with pytest.raises(ConfigError, match="cannot fill"):
        subject_kfold(toy_cases, k=50)
    path = tmp_path / "s.json"
    subject_kfold(toy_cases, k=2).save(path)
    raw = json.loads(path.read_text())
    raw["folds"][1]["val_subjects"].append(raw["folds"][0]["val_subjects"][0])
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="is in folds 0 and 1"):
        load_splits(path)
    subject_kfold(toy_cases, k=2).save(path)
    with pytest.raises(DataError, match="do not match"):
        load_splits(path, toy_cases[:-1])
