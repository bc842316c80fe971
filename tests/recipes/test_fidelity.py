"""The paper-fidelity tables: every "same" row is the paper's value, the docs hold the generated
tables, ``describe`` prints them, and the parameter counts the papers state are pinned."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from strokesynth.nets import count_parameters
from strokesynth.nets.registry import NETWORKS
from strokesynth.recipes.fidelity import DOCS, check, docs_section, render, rows, systems

from conftest import run_cli

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("recipe", sorted(DOCS))
def test_same_rows_are_the_papers_values_and_the_docs_hold_the_generated_table(recipe):
    torch.set_num_threads(1)
    assert recipe in systems() and check(recipe) == []
    table = rows(recipe)
    assert table and all(r.verdict == "same" or len(r.verdict) > len("deviation: ") + 20 for r in table)
    assert docs_section((DOCS_DIR / DOCS[recipe]).read_text()) == render(recipe), (
        f"docs/{DOCS[recipe]} holds an old fidelity table: regenerate it from strokesynth.recipes.fidelity.render")


def test_describe_prints_the_fidelity_table_with_the_paper_config(capsys):
    code, out, err = run_cli(capsys, "describe", "--recipe", "seg-comparison", "--config", "paper")
    assert code == 0, err
    assert "Paper fidelity of `seg-comparison`" in out and "| PSPNet (method) |" in out
    code, out, err = run_cli(capsys, "describe", "--recipe", "seg-comparison", "--config", "tiny")
    assert code == 2 and "--config paper" in err and len(err.strip().splitlines()) == 1


def _ns(**kw):
    return SimpleNamespace(num_classes=2, **kw)


def test_parameter_counts_the_papers_state():
    from strokesynth.recipes.ctmr import load_ctmr_config
    from strokesynth.recipes.labelmap_augmentation import load_recipe_config as labelmap
    from strokesynth.systems.segmenter import build_model

    gan, _, _ = load_ctmr_config("paper").resolved()
    assert count_parameters(NETWORKS.build("resnet_generator", gan.generator, 5)) == 11_378_177  # ResNet-9
    assert count_parameters(NETWORKS.build("patchgan", gan.discriminator, 6)) == 2_766_913  # 70x70 PatchGAN
    assert round(count_parameters(NETWORKS.build("unet", _ns(channels=[64, 128, 256, 512, 1024]), 3)) / 1e4) == 3104
    assert round(count_parameters(NETWORKS.build("slnet", _ns(channels=[64, 128, 256, 512, 1024]), 3)) / 1e4) == 3384
    lm = labelmap("paper")
    seg = lm.segmenter
    assert round(count_parameters(build_model(seg.model, 1, pretrained=False)) / 1e5) == 56  # 3D U-Net 5.6 M
    from strokesynth.systems.labelmap import build_translation

    nets = build_translation(lm.translation).networks
    assert round(count_parameters(nets["generator"]) / 1e5) == 418  # Pix2Pix U-Net 41.8 M
    # the label-map PatchGAN (888,898) and CycleGAN (about 42 M) are stated deviations
    assert count_parameters(nets["discriminator"]) != 888_898
