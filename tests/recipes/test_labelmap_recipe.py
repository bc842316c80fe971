"""The label-map augmentation recipe end to end at toy size, and its CLI's bad-input paths."""

from __future__ import annotations

import json

import pytest

from strokesynth.recipes.labelmap_augmentation import CLINICAL, load_recipe_config, run_labelmap_augmentation

from conftest import run_cli


def _micro():
    """A 32x32x8 phantom, 1-epoch networks (with the ``full_mask_lesion_gan`` fixture, so that
    injection fits after one lesion-GAN epoch)."""
    sets = ["phantom.stroke=6", "phantom.healthy=5", "phantom.size=32", "phantom.spacing_mm=6.0", "phantom.slices=8",
            "phantom.slice_mm=20.0", "n_synthetic=2", "finetune_cases=[2]", "fractions=[0.5]", "finetune_epochs=1",
            "translation.num_downs=5", "translation.spade_channels=[8,8,4]", "translation.size=32", "translation.ngf=4",
            "translation.spade_hidden=4", "translation.latent=8", "translation.cycle_ngf=4", "translation.n_blocks=1",
            "translation.ndf=4", "translation.run.epochs=1", "lesion_gan.run.epochs=1", "lesion_gan.latent=8",
            "lesion_gan.generator_channels=[8,4]", "lesion_gan.critic_channels=[4]",
            "segmenter.data.size=[32,32]", "segmenter.model.channels=[4,8,16]",
            "segmenter.model.strides=[[2,2,2],[2,2,2]]", "segmenter.run.epochs=1", "segmenter.run.steps_per_epoch=2",
            "segmenter.run.threads=2"]
    return load_recipe_config("tiny", sets)


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
