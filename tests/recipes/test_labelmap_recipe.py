"""The label-map augmentation recipe end to end at toy size, and its CLI's bad-input paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from strokesynth.config import load_config
from strokesynth.io.nifti import read_volume
from strokesynth.phantom.isles24 import Isles24Geometry, write_isles24_phantom
from strokesynth.recipes.labelmap_augmentation import (
    CLINICAL,
    LabelmapRecipeConfig,
    load_recipe_config,
    run_labelmap_augmentation,
)

from conftest import run_cli, tiny_phantom_config

#: A 32x32x8 phantom, 1-epoch networks (with the ``full_mask_lesion_gan`` fixture, so that
#: injection fits after one lesion-GAN epoch).
_SETS = ["phantom.stroke=6", "phantom.healthy=5", "phantom.size=32", "phantom.spacing_mm=6.0", "phantom.slices=8",
         "phantom.slice_mm=20.0", "n_synthetic=2", "finetune_cases=[2]", "fractions=[0.5]", "finetune_epochs=1",
         "translation.num_downs=5", "translation.spade_channels=[8,8,4]", "translation.size=32", "translation.ngf=4",
         "translation.spade_hidden=4", "translation.latent=8", "translation.cycle_ngf=4", "translation.n_blocks=1",
         "translation.ndf=4", "translation.run.epochs=1", "lesion_gan.run.epochs=1", "lesion_gan.latent=8",
         "lesion_gan.generator_channels=[8,4]", "lesion_gan.critic_channels=[4]",
         "segmenter.data.size=[32,32]", "segmenter.model.channels=[4,8,16]",
         "segmenter.model.strides=[[2,2,2],[2,2,2]]", "segmenter.run.epochs=1", "segmenter.run.steps_per_epoch=2",
         "segmenter.run.threads=2"]


def _micro():
    return load_recipe_config("tiny", _SETS)


@pytest.mark.usefixtures("full_mask_lesion_gan")
def test_recipe_writes_both_tables_figures_and_report(tmp_path, capsys):
    cfg = _micro()
    out = tmp_path / "run"
    table = run_labelmap_augmentation(cfg, out, echo=lambda s: None)
    rows = list(table["table_I"])
    assert rows[0] == CLINICAL and "clinical + synthetic (spade)" in rows and "clinical + synthetic (cyclegan)" in rows
    assert any(r.startswith("synthetic -> fine-tuned on 2") for r in rows)
    assert set(table["table_II"]) == {"0.5"}
    for key in ("dice", "hd", "hd_mean_directed", "assd", "precision", "recall", "rvd", "fp_ml"):
        assert key in table["table_I"][CLINICAL]
    assert table["lesion_gan"]["usable_samples"] > 0
    assert set(table["translation"]) == {"pix2pix", "spade", "cyclegan"}
    text = (out / "labelmap_table.txt").read_text()
    assert "Table I analog" in text and "Table II analog" in text and "Wilcoxon" in text
    saved = json.loads((out / "labelmap_table.json").read_text())
    assert saved["splits"]["test_normal"] >= 1
    assert (out / "figures" / "figure_data.npz").is_file()  # the figures' arrays; the report draws them
    code, stdout, _ = run_cli(capsys, "report", str(out))
    assert code == 0 and (out / "report.html").exists()
    for f in ("translations.png", "lesion_gan.png", "histograms.png"):
        assert (out / "figures" / f).stat().st_size > 1000
    # the synthetic database is a data set check accepts
    code, stdout, _ = run_cli(capsys, "check", str(out / "synthetic" / "pix2pix"))
    assert code == 0, stdout


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "healthy").mkdir()
    code, _, err = run_cli(capsys, "synth-db", "--healthy", str(tmp_path / "healthy"), "--lesion-gan",
                           str(tmp_path / "g.pt"),
                           "--translator", str(tmp_path / "t.pt"), "--out", str(tmp_path / "db"))
    assert code == 2 and "g.pt: checkpoint not found" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "recipe", "labelmap-augmentation", "--table", "nosuch", "--out", str(tmp_path / "r"))
    assert code == 2 and "no such label table" in err and not (tmp_path / "r").exists()
    code, _, err = run_cli(capsys, "recipe", "labelmap-augmentation", "--config", "tiny", "--set", "phantom.stroke=3",
                           "--set", "phantom.healthy=3", "--set", "phantom.size=48", "--set", "phantom.spacing_mm=4",
                           "--set", "phantom.slices=8", "--set", "translation.num_downs=4", "--set",
                           "translation.size=48", "--out", str(tmp_path / "r"))
    assert code == 2 and "powers of two" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_shipped_configs_load():
    assert load_recipe_config("paper").segmenter.model.channels == [16, 32, 64, 128, 256]
    tiny = load_recipe_config("tiny")
    assert tiny.translation.size == tiny.phantom.size == 64
    with pytest.raises(Exception, match="'pix2pix' is not among models"):
        load_recipe_config("tiny", ["models=[spade]"])


@pytest.mark.usefixtures("full_mask_lesion_gan")
def test_recipe_on_an_isles24_tree_at_its_working_grid(tmp_path, capsys):
    """ISLES'24 layout: the follow-up DWI and a label map (`*_dseg`, its table named in the sidecar)
    in NCCT space at 3.6 mm, put on a 7.2 mm working grid; the label table resolved and saved."""
    root = tmp_path / "release"
    write_isles24_phantom(tiny_phantom_config(subjects=4, healthy=3, seed=3), root,
                          Isles24Geometry(size=64, slices=8, slice_mm=4.0, frames=24, dt=1.5, factor=2))
    cfg = load_recipe_config("tiny", [*[s for s in _SETS if not s.startswith("phantom.")], f"dataset={root}",
                                      "grid.spacing_mm=7.2", "grid.slice_mm=4", "grid.slices=8"])
    out = tmp_path / "run"
    lines: list[str] = []
    table = run_labelmap_augmentation(cfg, out, echo=lines.append)
    assert any("working grid: 7.2 mm in plane" in s for s in lines)
    saved = load_config(LabelmapRecipeConfig, out / "config.yaml")
    assert saved.table == "phantom_ct" and saved.grid.spacing_mm == 7.2  # resolved once, saved with the run
    assert table["splits"]["train_stroke"] >= 1 and table["splits"]["test_normal"] >= 1
    assert table["lesion_gan"]["usable_samples"] > 0
    sources = json.loads((out / "data_sources.json").read_text())
    assert sources["keys"]["dwi"]["sessions"] == {"ses-02": 7} and sources["keys"]["anatomy"]["sessions"] == {"ses-02": 7}
    db = sorted((out / "synthetic" / "pix2pix").glob("syn_*/dwi.nii.gz"))
    assert db and read_volume(db[0]).spatial_shape == (32, 32, 8)  # the synthetic subjects are on the working grid


def test_the_label_table_comes_from_the_maps_sidecars_or_the_config():
    from strokesynth.data.case import Case
    from strokesynth.data.volume import Volume
    from strokesynth.errors import DataError
    from strokesynth.recipes.labelmap_augmentation import resolve_table

    def case(i, sidecar):
        meta = {"sidecar": sidecar} if sidecar is not None else {}
        return Case(f"c{i}", f"s{i}", {"anatomy": Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4), kind="label",
                                                          meta=meta)})

    assert resolve_table("auto", [case(0, None), case(1, {})]) == "phantom"
    assert resolve_table("auto", [case(0, {"LabelTable": "freesurfer_aseg"})] * 2) == "freesurfer_aseg"
    assert resolve_table("phantom_ct", [case(0, {"LabelTable": "freesurfer_aseg"})]) == "phantom_ct"
    with pytest.raises(DataError, match="different label tables.*--table"):
        resolve_table("auto", [case(0, {"LabelTable": "phantom_ct"}), case(1, None)])
