"""Pseudo-DWI system (Wang, Song et al.): CTA features, weight map, losses, training modes, recipe, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.losses import GeneralizedDiceLoss

from strokesynth.config import to_dict
from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.engine.loop import fit
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import write_cohort
from strokesynth.losses.synthesis import HardnessGeneralizedDice, lesion_weight_map, synthesis_loss
from strokesynth.perfusion.cta import CtaConfig, cta_features, with_cta_features
from strokesynth.phantom import write_phantom
from strokesynth.recipes.pseudo_dwi import (
    ROWS,
    load_recipe_config,
    paper_config,
    row_config,
    row_key,
    tiny_config,
)
from strokesynth.systems.pseudo_dwi import PseudoDwi, PseudoDwiConfig, pseudo_dwi_dataset

from conftest import run_cli, tiny_phantom_config


def _scan(t: int = 30, arrival: int = 8) -> np.ndarray:
    """A 4x4x2 'head' whose tissue (30 HU) enhances with a gamma-like bolus from ``arrival``."""
    tt = np.arange(t, dtype=np.float32)
    s = np.clip(tt - arrival, 0, None)
    bolus = 40 * (s / 6) ** 1.5 * np.exp(-s / 6)  # 0 up to the arrival, peak 9 frames later, then a fall
    return 30 + np.broadcast_to(bolus, (4, 4, 2, t)).copy()


def test_cta_features_window_mip_and_frames():
    scan = _scan()
    f = cta_features(scan, CtaConfig(k=5, frames=6))
    assert f.ts == 8  # the arrival: the next five differences are all positive
    assert f.te == 29 and f.window.shape == (4, 4, 2, 6) and f.mip.shape == (4, 4, 2)
    np.testing.assert_allclose(f.mip, scan[..., 8:30].max(-1))
    np.testing.assert_allclose(f.window[..., 0], scan[..., 8])
    np.testing.assert_allclose(f.window[..., -1], scan[..., 29])
    with pytest.raises(DataError, match="never rises"):
        cta_features(np.full((4, 4, 2, 30), 30.0))  # flat: no bolus
    with pytest.raises(DataError, match="fewer than"):
        cta_features(scan, CtaConfig(frames=40))
    with pytest.raises(DataError, match="4D"):
        cta_features(scan[..., 0])


def test_with_cta_features_is_lazy_and_names_the_case_without_ctp():
    aff = np.diag([2.0, 2.0, 5.0, 1.0])
    case = Case("c1", "s1", {"ctp": Volume(_scan(), aff, dt=1.0), "cbf": Volume(np.ones((4, 4, 2)), aff)})
    out = with_cta_features(case)
    assert out["cta_mip"].is_lazy and out["cta_bolus"].shape == (4, 4, 2, 6)
    np.testing.assert_allclose(out["cta_mip"].array, _scan()[..., 8:].max(-1))
    with pytest.raises(DataError, match="c1.*raw 4D CTP"):
        with_cta_features(Case("c1", "s1", {"cbf": Volume(np.ones((4, 4, 2)), aff)}))


def test_cta_features_of_only_the_last_scans_stay_in_memory(monkeypatch):
    """Features are kept for the last KEEP_SCANS scans (a 512 px scan's are 590 MB); an older one's
    are computed again, the same, and reading both keys of a case computes them once."""
    from strokesynth.perfusion import cta

    calls = []
    real = cta.cta_features
    monkeypatch.setattr(cta, "cta_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    aff = np.diag([2.0, 2.0, 5.0, 1.0])
    cases = [with_cta_features(Case(f"c{i}", f"s{i}", {"ctp": Volume(_scan() + i, aff, dt=1.0)})) for i in range(4)]
    first = cases[0]["cta_mip"].array.copy()
    cases[0]["cta_bolus"].array  # noqa: B018
    assert len(calls) == 1
    for c in cases[1:]:
        c["cta_mip"].array  # noqa: B018
    assert len(calls) == 4 and len(cta._Lazy._kept) == cta.KEEP_SCANS
    np.testing.assert_array_equal(cases[0]["cta_mip"].array, first)
    assert len(calls) == 5


def test_weight_map_follows_the_formula():
    y = torch.zeros(2, 1, 40, 40, dtype=torch.long)
    y[0, 0, 10:14, 10:14] = 1
    a = lesion_weight_map(y, w=1.5, d0=50.0)
    assert a.shape == (2, 1, 40, 40)
    assert float(a[0, 0, 12, 12]) == 1.5
    d = np.hypot(39 - 13, 39 - 13)  # far corner to the nearest lesion pixel
    e = np.exp(-d / 50)
    assert float(a[0, 0, 39, 39]) == pytest.approx(0.5 + e / (e + 1), rel=1e-5)
    assert float(a[0, 0, 12, 14]) == pytest.approx(0.5 + np.exp(-1 / 50) / (np.exp(-1 / 50) + 1), rel=1e-5)
    assert torch.all(a[1] == 0.5)  # no lesion: everywhere "far"


def test_synthesis_and_hardness_losses():
    torch.manual_seed(0)
    real = torch.rand(2, 1, 16, 16)
    a = torch.full_like(real, 2.0)
    # the paper's norms per image (16x16 = 256 pixels, error 0.1): ‖A e‖₂ = 2 * 0.1 * 16
    assert float(synthesis_loss("wl2", real + 0.1, real, a)) == pytest.approx(3.2, rel=1e-4)
    assert float(synthesis_loss("l2", real + 0.1, real)) == pytest.approx(1.6, rel=1e-4)
    assert float(synthesis_loss("l1", real + 0.1, real)) == pytest.approx(1.6, rel=1e-4)  # scaled to match L2
    assert float(synthesis_loss("wl2", real + 0.1, real, a, reduction="mean")) == pytest.approx(0.04, rel=1e-4)
    assert float(synthesis_loss("l1", real + 0.1, real, reduction="mean")) == pytest.approx(0.1, rel=1e-4)
    logits, y = torch.randn(2, 2, 16, 16), (torch.rand(2, 1, 16, 16) > 0.7).long()
    gd = GeneralizedDiceLoss(to_onehot_y=True, softmax=True, batch=True)(logits, y)
    assert float(HardnessGeneralizedDice()(logits, y)) == pytest.approx(float(-torch.log(1 - gd)), rel=1e-5)
    perfect = torch.cat([(1 - y) * 20.0 - 10, y * 20.0 - 10], 1).float()
    assert float(HardnessGeneralizedDice()(perfect, y)) < 1e-3


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="seg_input"):
        PseudoDwiConfig(mode="segmentation", seg_input="pseudo_dwi")
    with pytest.raises(ConfigError, match="generator_inputs"):
        PseudoDwiConfig(generator_inputs=["maps", "t2"])
    with pytest.raises(ConfigError, match="gan_weight"):
        PseudoDwiConfig(synthesis_loss="none")


def test_rows_are_valid_and_shared_rows_train_once():
    base = tiny_config().system
    keys = {r: row_key(row_config(base, r)) for r in ROWS}
    assert {r.table for r in ROWS} == {1, 2, 3, 4, 5}
    assert all(sum(r.reference for r in ROWS if r.table == t) == 1 for t in range(1, 6))
    ref = {r.table: keys[r] for r in ROWS if r.reference}
    by_label = {(r.table, r.label): keys[r] for r in ROWS}
    assert ref[1] == by_label[2, "F_o"]  # w-L2 + l_h on F_o, U-Net (CE) segmenting
    assert ref[3] == by_label[4, "CE"]  # SLNet + CE on F_o
    assert ref[4] == by_label[5, "F_o"]  # SLNet + WCE+HGD on F_o
    assert ref[5] == next(k for (t, label), k in by_label.items() if t == 3 and "end to end" in label)
    assert len(set(keys.values())) == 30  # 34 rows, four of them shared
    # the paper's Tables 1, 3 and 4: the generator on F_o; the segmenters on F_o (3: CE; 4: each loss)
    for r in ROWS:
        c = row_config(base, r)
        if r.table == 1:
            assert c.generator_inputs == ["maps"] and c.segmenter.loss == "ce"
        if r.table in (3, 4) and "not in the paper" not in r.label:
            assert (c.mode, c.seg_input) == ("segmentation", "maps")
            assert r.table == 4 or c.segmenter.loss == "ce"
            assert r.table == 3 or c.segmenter.name == "slnet"


def test_shipped_configs_match_the_code():
    assert to_dict(load_recipe_config("tiny")) == to_dict(tiny_config())
    assert to_dict(load_recipe_config("paper")) == to_dict(paper_config())
    p = paper_config().system
    assert (p.optim.name, p.optim.lr, p.optim.factor, p.optim.milestones, p.run.epochs, p.run.batch_size) == (
        "rmsprop", 2e-3, 0.2, [180], 300, 5)
    assert (p.lesion_weight, p.distance, p.gamma, p.alpha, p.beta, p.cta.k, p.cta.frames) == (1.5, 50.0, 1.2, 1, 1,
                                                                                            5, 6)
    # the paper reports no augmentation and samples uniformly; tiny draws half of each batch from lesion slices
    assert (p.data.augment_enabled, p.run.lesion_fraction) == (False, 0.0)
    t = tiny_config().system
    assert (t.data.augment_enabled, t.run.lesion_fraction) == (False, 0.5)


@pytest.fixture(scope="module")
def pdwi_data(tmp_path_factory):
    from strokesynth.phantom import generate_cohort

    cfg = tiny_phantom_config(subjects=3, healthy=1, seed=11)
    cfg.grid.size, cfg.grid.spacing_mm = 64, 3.6
    return write_phantom(generate_cohort(cfg), tmp_path_factory.mktemp("pdwi") / "data", cfg, figures=False)


def _small(cfg: PseudoDwiConfig, epochs: int = 2) -> PseudoDwiConfig:
    cfg.data.size = (64, 64)
    cfg.extractor_channels, cfg.generator_channels, cfg.segmenter.channels = [4, 8], [8, 16, 32], [8, 16, 32]
    cfg.run.epochs, cfg.run.batch_size, cfg.run.steps_per_epoch, cfg.run.threads = epochs, 2, 3, 2
    cfg.optim.milestones = []
    return cfg


@pytest.mark.parametrize("mode", ["end_to_end", "subsequent", "synthesis"])
def test_modes_train_resume_and_predict_without_dwi(pdwi_data, tmp_path, mode):
    from strokesynth.io import open_cohort

    cases = open_cohort(pdwi_data).cases
    cfg = _small(PseudoDwiConfig(mode=mode, gan_weight=0.1 if mode == "synthesis" else 0.0), epochs=3)
    train = pseudo_dwi_dataset(cfg, cases[:-1], with_target=True, train=True)
    # validated on a training case that holds a lesion (this test checks the mechanics, not the score)
    val = pseudo_dwi_dataset(cfg, [next(c for c in cases if c["lesion"].array.any())], with_target=True, train=False)
    res = fit(lambda: PseudoDwi(cfg), train, val, tmp_path / "run", cfg.run, seed=0)
    hist = res["history"]
    assert len(hist) == 3 and all(np.isfinite(h["loss"]) for h in hist)
    if mode == "subsequent":  # three stages, one per epoch: extractor, generator, segmenter
        assert "loss_e" in hist[0] and "loss_g" not in hist[0] and "loss_s" in hist[2] and "loss_g" not in hist[2]
        # the untrained segmenter of the first two stages reports no Dice, so it cannot be the kept model
        assert [np.isnan(h["val_dice"]) for h in hist] == [True, True, False] and res["best_epoch"] == 3
    again = fit(lambda: PseudoDwi(cfg), train, val, tmp_path / "run", cfg.run, seed=0, )
    assert again["epochs"] == 3
    system = res["system"]
    infer = pseudo_dwi_dataset(cfg, [c.select(["cbf", "cbv", "mtt", "tmax", "ctp"]) for c in cases[-1:]],
                               with_target=False, train=False, with_label=False)
    system.ch = type(system.ch)(cfg, with_target=False)
    pseudo, prob = system.predict(infer, 0)
    assert pseudo.shape == cases[-1].spatial_shape and np.allclose(pseudo.affine, cases[-1].affine)
    assert 0 <= pseudo.array.min() and pseudo.array.max() <= 1
    assert (prob is None) == (mode == "synthesis")


def test_recipe_cli_tables_report_and_bad_input(capsys, pdwi_data, tmp_path, toy_cases):
    out = tmp_path / "run"
    code, text, err = run_cli(capsys, "recipe", "pseudo-dwi", "--data", str(pdwi_data), "--out", str(out),
                              "--tables", "3", "--set", "folds=2", "--set", "system.data.size=[64,64]",
                              "--set", "system.extractor_channels=[4,8]", "--set", "system.generator_channels=[8,16]",
                              "--set", "system.segmenter.channels=[4,8,16]", "--set", "system.run.epochs=1",
                              "--set", "system.run.steps_per_epoch=2")
    assert code == 0, err
    t3 = (out / "table3.txt").read_text()
    for name in ("FCN", "U-Net", "R2UNet", "ResUNet", "SLNet", "SLNet w/o SE", "SLNet w/o SN", "baseline", "Wilcoxon", "params (M)"):
        assert name in t3
    tables = json.loads((out / "tables.json").read_text())
    e2e = "SLNet on DWI^(o,l,h), end to end, WCE+HGD (not in the paper's Table 3)"
    assert [r["row"] for r in tables["3"]["rows"]] == ["FCN", "U-Net", "R2UNet", "ResUNet", "SLNet", "SLNet w/o SE",
                                                       "SLNet w/o SN", e2e]
    assert (out / "report.html").exists() and (out / "figures" / "bolus_window.png").exists()
    assert any((out / "rows").glob("*/dwi_pseudo/*/dwi_pseudo.nii.gz"))
    # predict: a new case with maps and the raw CTP, no DWI -> mask, probability and the pseudo-DWI
    from strokesynth.io import open_cohort

    new = write_cohort([c.select(["ct", "ctp", "cbf", "cbv", "mtt", "tmax"]) for c in open_cohort(pdwi_data).cases[:1]],
                       tmp_path / "new", layout="isles2018")
    slnet = next(r["run"] for r in tables["3"]["rows"] if r["row"] == e2e)
    code, text, err = run_cli(capsys, "predict", "--model", str(out / slnet), "--input", str(new),
                              "--out", str(tmp_path / "pred"))
    assert code == 0, err
    case_dir = next((tmp_path / "pred").iterdir())
    assert {p.name for p in case_dir.iterdir()} >= {"mask.nii.gz", "prob.nii.gz", "dwi_pseudo.nii.gz", "overlay.png"}
    # resume keeps finished rows
    code, text, _ = run_cli(capsys, "recipe", "pseudo-dwi", "--out", str(out), "--resume")
    assert code == 0 and "== table" not in text
    # no raw CTP: one line, exit 2, nothing written
    no_ctp = write_cohort(toy_cases, tmp_path / "no_ctp", layout="plain",
                          modalities=["ct", "cbf", "cbv", "mtt", "tmax", "dwi"])
    bad = tmp_path / "bad"
    code, _, err = run_cli(capsys, "recipe", "pseudo-dwi", "--data", str(no_ctp), "--out", str(bad))
    assert code == 2 and err.startswith("error: ") and "ctp" in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()
    # a raw CTP without a bolus (the toy scans are noise): one line naming the file, nothing written
    flat = write_cohort(toy_cases, tmp_path / "flat", layout="isles2018",
                        modalities=["ct", "ctp", "cbf", "cbv", "mtt", "tmax", "dwi"])
    code, _, err = run_cli(capsys, "recipe", "pseudo-dwi", "--data", str(flat), "--out", str(bad))
    assert code == 2 and "no bolus found" in err and "4DPWI" in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()
    code, _, err = run_cli(capsys, "recipe", "pseudo-dwi", "--data", str(pdwi_data), "--out", str(bad),
                           "--tables", "7")
    assert code == 2 and "tables" in err and not bad.exists()


def test_describe_pseudo_dwi_prints_the_paper_counts(capsys):
    code, out, _ = run_cli(capsys, "describe", "--recipe", "pseudo-dwi", "--size", "64")
    assert code == 0 and "31,037,698" in out and "33,835,246" in out


def test_tables_report_wangs_unsigned_relative_volume_error():
    # |V_s - V_g| / V_g: an over- and an under-segmentation by half are both 0.5, not a mean of 0
    from strokesynth.recipes.pseudo_dwi import _unsigned_rve

    rows = [{"method": "a", "rve": 0.5}, {"method": "a", "rve": -0.5}, {"method": "a", "rve": float("nan")}]
    out = _unsigned_rve(rows)
    assert [r["rve"] for r in out[:2]] == [0.5, 0.5] and np.isnan(out[2]["rve"]) and rows[1]["rve"] == -0.5
