"""The system contract is typed and complete: a registered system is named by its registration,
declares its config type, and cannot be built without a training step."""

from __future__ import annotations

import typing

import pytest

from strokesynth.engine.system import SYSTEMS, System


def test_every_system_is_named_by_its_registration_and_declares_its_config():
    for name in SYSTEMS.names():
        cls = SYSTEMS.get(name)
        assert cls.name == name
        if not cls.__module__.startswith("strokesynth."):
            continue  # a test's own toy system
        assert cls.config_class is not None, name
        generic = [b for c in cls.__mro__ for b in getattr(c, "__orig_bases__", ()) if typing.get_origin(b) is System]
        assert generic and typing.get_args(generic[0])[0] is cls.config_class, name


def test_a_system_without_a_training_step_cannot_be_built():
    class NoStep(System):
        pass

    with pytest.raises(TypeError, match="train_step"):
        NoStep()


def test_the_registry_names_the_class():
    from strokesynth.registry import Registry  # noqa: F401 - the base registry stays generic

    @SYSTEMS.register("contract_probe")
    class Probe(System):
        def train_step(self, batch, rt):
            return {}

    try:
        assert Probe.name == "contract_probe" and SYSTEMS.get("contract_probe") is Probe
    finally:
        SYSTEMS._entries.pop("contract_probe", None)  # noqa: SLF001 - leave the registry as found
        SYSTEMS._info.pop("contract_probe", None)  # noqa: SLF001


def test_predict_and_export_find_what_they_need_through_the_contract():
    """``predict`` takes the system that segments new cases from the registry by its config type;
    no application names a system class."""
    from pathlib import Path

    from strokesynth.apps.predict import predictor_class, required_modalities
    from strokesynth.systems.pseudo_dwi import PseudoDwi, PseudoDwiConfig
    from strokesynth.systems.segmenter import Segmenter, TrainConfig

    assert predictor_class(TrainConfig()) is Segmenter and predictor_class(PseudoDwiConfig()) is PseudoDwi
    assert "ctp" in required_modalities(PseudoDwiConfig())
    assert required_modalities(TrainConfig()) == TrainConfig().data.modalities
    apps = Path(__file__).resolve().parents[2] / "src" / "strokesynth" / "apps"
    for name in ("predict.py", "export.py"):
        text = (apps / name).read_text(encoding="utf-8")
        for cls in ("Segmenter", "PseudoDwi)", "LesionGenerator", "SPADEGenerator"):
            assert f"isinstance(system, {cls}" not in text and f"isinstance(net, {cls}" not in text, (name, cls)
