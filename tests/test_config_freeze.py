"""A resolved config is frozen: the command lines freeze what they validated, and the runs take it
as it is (a change in place is a bug and raises); new configs come from ``dataclasses.replace``."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from strokesynth.config import FrozenConfigError, freeze, is_frozen, load_config, to_dict, validated
from strokesynth.recipes.registry import RECIPES
from strokesynth.systems.segmenter import TrainConfig


@pytest.mark.parametrize("name", ["ctmr-cgan", "pseudo-dwi", "pseudo-healthy", "labelmap-augmentation",
                                  "seg-comparison"])
def test_every_shipped_recipe_config_freezes_whole(name):
    cfg = RECIPES.get(name).config("tiny", [])
    before = to_dict(cfg)
    freeze(cfg)
    with pytest.raises(FrozenConfigError, match="name"):
        cfg.name = "changed"
    nested = [getattr(cfg, f.name) for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))]
    for sub in nested:  # every nested config too (run, data, optimiser, ...)
        field = dataclasses.fields(sub)[0].name
        with pytest.raises(FrozenConfigError):
            setattr(sub, field, getattr(sub, field))
        assert is_frozen(sub)
    assert to_dict(cfg) == before and to_dict(validated(cfg)) == before


def test_replace_and_copies_are_new_configs():
    cfg = freeze(load_config(TrainConfig, None, ["run.epochs=3"]))
    other = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, epochs=4))
    assert other.run.epochs == 4 and cfg.run.epochs == 3 and not is_frozen(other)
    other.name = "mine"  # a new config is the caller's to change until it is frozen in its turn
    copied = copy.deepcopy(cfg)
    copied.run.epochs = 5
    assert cfg.run.epochs == 3 and not is_frozen(copied) and not is_frozen(copied.run)
    with pytest.raises(FrozenConfigError):
        del cfg.run.epochs
    unfrozen = TrainConfig()
    unfrozen.name = "still changeable"  # freezing one instance leaves the others of its class alone


def test_replaced_derives_a_new_config_along_dotted_paths_and_leaves_the_frozen_one_alone():
    from strokesynth.config import freeze, is_frozen, replaced
    from strokesynth.systems.segmenter import TrainConfig

    base = freeze(TrainConfig(name="base"))
    fold = replaced(base, {"run.seed": 7, "data.dataset": "/x"}, name="fold")
    assert (fold.name, fold.run.seed, fold.data.dataset) == ("fold", 7, "/x")
    assert (base.name, base.run.seed, base.data.dataset) == ("base", 0, "")
    assert not is_frozen(fold) and not is_frozen(fold.run) and is_frozen(fold.model)  # unchanged parts are shared
    assert fold.model is base.model
    with pytest.raises(TypeError):
        replaced(base, {"run.no_such_field": 1})
    with pytest.raises(Exception, match="epochs"):  # the changed levels are checked again (__post_init__)
        replaced(base, {"run.epochs": 0})
