"""The cross-validation runner's holdout protocol (the label-map paper's)."""

from __future__ import annotations

from types import SimpleNamespace

from strokesynth.data.splits import random_holdout
from strokesynth.engine.config import RunConfig
from strokesynth.engine.crossval import HOLDOUT, fold_seed, train_holdout

from toy_system import AutoencoderCritic, Blobs, ToyConfig


def _run(folder, seed=3):
    cases = [SimpleNamespace(id=f"c{i}") for i in range(10)]
    test = [SimpleNamespace(id=f"t{i}") for i in range(3)]
    seen = {}

    def datasets(cs, train):
        seen["train" if train else "select"] = [c.id for c in cs]
        return Blobs(n=8 if train else 4, seed=len(cs))

    run = RunConfig(epochs=2, batch_size=4, inner_fraction=0.2)
    out = train_holdout(cases, test, run, folder, build=lambda _: AutoencoderCritic(ToyConfig()), datasets=datasets,
                        seed=seed, predict=lambda o, t: [c.id for c in t], desc="holdout")
    return cases, out, seen


def test_holdout_splits_once_trains_and_hands_the_fixed_test_set_to_predict(tmp_path):
    cases, out, seen = _run(tmp_path / "a")
    train, select = random_holdout(cases, 0.2, 3)  # the one rule of the early-stopping split
    assert seen == {"train": [c.id for c in train], "select": [c.id for c in select]}
    assert not set(out.sets.train) & set(out.sets.select) and len(out.sets.select) == 2
    assert out.fold == HOLDOUT and out.sets.protocol == "holdout" and out.predictions == ["t0", "t1", "t2"]
    assert out.result["epochs"] == 2 and (tmp_path / "a" / "best.pt").is_file()
    assert out.kept().name == "toy_autoencoder_critic"
    # the same seed gives the same training; the k-fold seed rule is not involved
    _, again, _ = _run(tmp_path / "b")
    assert [h["val_l1"] for h in again.result["history"]] == [h["val_l1"] for h in out.result["history"]]
    assert fold_seed(3, 0) == 3
