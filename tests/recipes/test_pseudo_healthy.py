"""Pseudo-healthy synthesis (Xia, Chartsias & Tsaftaris): networks, slices, learning, recipe, predict, bad input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from strokesynth.data.case import Case
from strokesynth.data.pathology_slices import FactorisationPairs, SliceBank, SliceConfig, check_bank, prepare_volume
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.metrics.pseudo_healthy import best_threshold, healthiness, slice_dice
from strokesynth.nets.factorisation import FactorGenerator, PatchCritic, ResidualUNet

from conftest import run_cli


def test_networks_shapes_and_ranges():
    x = torch.rand(2, 1, 64, 64)
    g = FactorGenerator(1, 8, 2)
    r = FactorGenerator(2, 8, 2)
    s = ResidualUNet(1, [8, 16, 32, 64])
    d = PatchCritic(1, [8, 16, 32, 64])
    with torch.no_grad():
        outs = (g(x), r(torch.cat([x, x], 1)), s(x))
    for y in outs:
        assert y.shape == (2, 1, 64, 64) and float(y.min()) >= 0 and float(y.max()) <= 1
    assert d(x).shape == (2, 1, 4, 4)
    assert PatchCritic(1)(torch.rand(1, 1, 128, 128)).shape == (1, 1, 8, 8)
    # the appendix: a norm after every stride-2 conv (the first too), a sigmoid, 13x10 maps of 208x160 slices
    with torch.no_grad():
        scores = PatchCritic(1)(torch.rand(2, 1, 208, 160))
    assert scores.shape == (2, 1, 13, 10) and float(scores.min()) >= 0 and float(scores.max()) <= 1
    layers = list(PatchCritic(1).model)
    assert isinstance(layers[1], torch.nn.InstanceNorm2d) and isinstance(layers[-1], torch.nn.Sigmoid)
    # LeakyReLU(0.2) inside the generators' residual blocks (ReLU elsewhere), as the appendix
    acts = [m for blk in g.model if type(blk).__name__ == "ResnetBlock" for m in blk.modules()
            if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))]
    assert acts and all(isinstance(a, torch.nn.LeakyReLU) and a.negative_slope == 0.2 for a in acts)
    with pytest.raises(ValueError, match="divisible by 8"):
        s(torch.rand(1, 1, 36, 36))


def test_gan1_judges_gs_pseudo_healthy_image_and_rs_healthy_mask_output():
    # the reading of L_GAN1 (module docstring of the system): D_x sees h = G(x_p) and p = R(x_h, 0)
    from strokesynth.engine.system import Runtime
    from strokesynth.systems.pseudo_healthy import PathologyFactorisation, PseudoHealthyConfig

    torch.manual_seed(0)
    cfg = PseudoHealthyConfig(ngf=4, n_blocks=1, segmentor_channels=[4, 8], critic_channels=[4, 8])
    system = PathologyFactorisation(cfg)
    batch = {k: torch.rand(2, 1, 32, 32) for k in ("x_p", "m_p", "x_h", "m_o")}
    with torch.no_grad():
        h = system.networks["G"](batch["x_p"])
        p = system.networks["R"](torch.cat([batch["x_h"], torch.zeros_like(batch["x_h"])], 1))
    seen = []
    system.networks["D_x"].register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    system.train_step(batch, Runtime(system))
    fakes = [x for x in seen if x.shape[0] == 4 and not torch.equal(x, batch["x_h"].repeat(2, 1, 1, 1))]
    assert fakes and torch.allclose(fakes[0][:2], h, atol=1e-6) and torch.allclose(fakes[0][2:], p, atol=1e-6)


def test_paper_sizes():
    """The appendix widths: G 32 features + 6 blocks, S 32..512, critics 32-128-256-512."""
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(FactorGenerator(1, 32, 6)) == n(FactorGenerator(2, 32, 6)) - 7 * 7 * 32
    assert n(PatchCritic(1)) == (16 * 32 + 32) + (16 * 32 * 128 + 128) + (16 * 128 * 256 + 256) + (
        16 * 256 * 512 + 512) + (16 * 512 + 1)


def _case(img: np.ndarray, mask: np.ndarray | None, *, cid="c1", subject="s1", affine=None, spacing=2.0) -> Case:
    aff = np.diag([spacing, spacing, 5.0, 1.0]) if affine is None else affine
    mods = {"flair": Volume(img.astype(np.float32), aff)}
    if mask is not None:
        mods["lesion"] = Volume(mask.astype(np.uint8), aff, kind="label")
    return Case(cid, subject, mods)


def test_prepare_volume_scales_keeps_middle_slices_and_round_trips():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 100, (40, 48, 10)).astype(np.float32)
    mask = np.zeros(img.shape, np.uint8)
    mask[10:14, 10:14, 5] = 1
    cfg = SliceConfig(modality="flair", middle_slices=4, size=64)
    vol = prepare_volume(_case(img, mask), cfg)
    assert vol.images.shape == (4, 64, 64) and list(vol.z) == [3, 4, 5, 6]
    assert float(vol.images.max()) == 1.0 and float(vol.images.min()) >= 0
    assert vol.masks[2].sum() == 16 and vol.masks[[0, 1, 3]].sum() == 0
    back = vol.to_case_grid(vol.images)
    scaled = np.clip(img / np.percentile(img, 99.5), 0, 1)
    assert np.allclose(back[:, :, 3:7], scaled[:, :, 3:7], atol=1e-6)
    assert not back[:, :, :3].any()
    # resampled to a coarser pixel and back: the same image up to interpolation
    coarse = prepare_volume(_case(img, mask), SliceConfig(modality="flair", size=64, spacing_mm=4.0))
    assert coarse.images.shape == (10, 64, 64) and coarse.zoom == (0.5, 0.5)
    assert coarse.masks[5].sum() == 4


def test_prepare_volume_refuses_bad_masks():
    img = np.ones((16, 16, 3), np.float32)
    bad = np.zeros((16, 16, 3))
    bad[1, 1, 1] = 2
    with pytest.raises(DataError, match="not binary"):
        prepare_volume(_case(img, bad), SliceConfig(size=16))
    other = np.diag([1.0, 1.0, 5.0, 1.0])
    case = Case("c", "s", {"flair": Volume(img, np.diag([2.0, 2.0, 5.0, 1.0]))}, own_grid={"flair"})
    case.modalities["lesion"] = Volume(np.zeros((16, 16, 3), np.uint8), other, kind="label")
    with pytest.raises(DataError, match="different grid"):
        prepare_volume(case, SliceConfig(size=16))
    with pytest.raises(DataError, match="no lesion mask"):
        prepare_volume(_case(img, None), SliceConfig(size=16))
    with pytest.raises(DataError, match="no dwi"):
        prepare_volume(_case(img, None), SliceConfig(modality="dwi", size=16), need_mask=False)


def toy_bank(n: int, seed: int, side: int = 32) -> SliceBank:
    """Discs of tissue (0.45); the first half carries a bright lesion (0.9) inside the disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    imgs, masks = [], []
    for i in range(n):
        r = rng.uniform(10, 13)
        cx, cy = side / 2 + rng.uniform(-2, 2, 2)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < r ** 2
        img = disc * (0.45 + 0.03 * rng.standard_normal((side, side)))
        m = np.zeros((side, side), bool)
        if i < n // 2:
            a, t = rng.uniform(0, 2 * np.pi), rng.uniform(0, r - 5)
            lx, ly, lr = cx + t * np.cos(a), cy + t * np.sin(a), rng.uniform(2.5, 4)
            m = (((xx - lx) ** 2 + (yy - ly) ** 2) < lr ** 2) & disc
            img = np.where(m, 0.9 + 0.03 * rng.standard_normal((side, side)), img)
        imgs.append(np.clip(img, 0, 1))
        masks.append(m)
    subjects = np.array([f"s{i % 6}" for i in range(n)])
    return SliceBank(np.array(imgs, np.float32)[:, None], np.array(masks, np.float32)[:, None], subjects, subjects,
                     np.arange(n))


def test_pairs_draw_healthy_slices_and_masks_of_other_subjects():
    bank = toy_bank(24, 0)
    ds = FactorisationPairs(bank, seed=3, flip=False)
    assert len(ds) == 12
    for i in range(len(ds)):
        s = ds[i]
        assert s["m_p"].sum() > 0 and s["m_o"].sum() > 0
        h = int(np.flatnonzero((bank.images[:, 0] == s["x_h"][0].numpy()).all(axis=(1, 2)))[0])
        assert not bank.lesion[h]
    a, b = ds[5], ds[5]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ds.set_epoch(1)
    assert any(not torch.equal(a[k], ds[5][k]) for k in ("x_h", "m_o"))
    with pytest.raises(DataError, match="no healthy slice"):
        check_bank(bank.subset(bank.lesion), "x")
    with pytest.raises(DataError, match="no pathological slice"):
        check_bank(bank.subset(~bank.lesion), "x")


def test_metrics():
    a = np.zeros((2, 1, 4, 4), bool)
    a[0, 0, :2] = True
    assert slice_dice(a, a).tolist() == [1.0, 1.0]
    assert slice_dice(a, ~a)[0] == 0.0
    assert np.isclose(healthiness(np.array([0, 10]), np.array([10, 10])).mean(), 0.5)
    score = np.zeros((1, 1, 4, 4))
    score[0, 0, 0] = 0.5
    thr, d = best_threshold(score, score > 0.3)
    assert d == 1.0 and thr < 0.5


@pytest.mark.slow
def test_factorisation_learns_to_segment_and_remove_the_lesion(tmp_path):
    """Paired factorisation on toy discs: S finds held-out lesions and G fills them with tissue.

    Measured (2 threads, seed 0): S Dice 0.64; lesion minus tissue in the pseudo-healthy image
    0.10 against 0.45 in the input."""
    from strokesynth.engine.loop import fit
    from strokesynth.systems.pseudo_healthy import PseudoHealthyConfig, batched, build_pseudo_healthy

    train, test = toy_bank(64, 0), toy_bank(32, 1)
    cfg = PseudoHealthyConfig(data=SliceConfig(size=32), ngf=8, n_blocks=2, segmentor_channels=[8, 16, 32],
                              critic_channels=[8, 16, 32, 64])
    cfg.run.epochs, cfg.run.batch_size, cfg.run.seed, cfg.run.threads = 12, 4, 0, 2
    model = fit(lambda: build_pseudo_healthy(cfg), FactorisationPairs(train, 0), None, tmp_path, cfg.run)["system"]
    model.eval_mode()
    les = test.lesion
    x, m = test.images[les], test.masks[les] > 0
    dice = slice_dice(batched(model.pathology, x) > 0.5, m).mean()
    ph = batched(model.pseudo_healthy, x)
    tissue = (~m) & (x > 0.2)
    assert dice > 0.3
    assert ph[m].mean() - ph[tissue].mean() < 0.5 * (x[m].mean() - x[tissue].mean())


def _dwi_dataset(tmp_path, toy_cases, edit=None):
    from strokesynth.io import write_cohort

    root = write_cohort(toy_cases, tmp_path / "data", layout="plain")
    if edit is not None:
        edit(root)
    return root


RECIPE = ["--contrasts", "dwi", "--set", "system.data.size=32", "--set", "segmentor.data.size=32",
          "--set", "system.ngf=4", "--set", "system.n_blocks=1", "--set", "system.segmentor_channels=[4,8,16]",
          "--set", "segmentor.channels=[4,8,16]", "--set", "system.critic_channels=[4,8,8,8]",
          "--set", "system.run.epochs=1", "--set", "segmentor.run.epochs=1", "--set", "folds=2",
          "--set", "real_case=", "--set", "system.data.middle_slices=0", "--set", "folds_to_run=[0,1]"]


@pytest.mark.slow
def test_recipe_end_to_end_resume_report_and_predict(capsys, tmp_path, toy_cases):
    data = _dwi_dataset(tmp_path, toy_cases)
    out = tmp_path / "run"
    code, text, err = run_cli(capsys, "recipe", "pseudo-healthy", "--data", str(data), "--out", str(out), *RECIPE)
    assert code == 0, err
    table = json.loads((out / "ph_table.json").read_text())
    stats = table["contrasts"]["dwi"]["stats"]
    assert set(stats) == {"input (no synthesis)", "cGAN", "CycleGAN", "proposed unpaired", "proposed paired"}
    assert table["ms_ssim_scales"] == 2
    assert stats["proposed paired"]["s_dice"]["n"] == table["contrasts"]["dwi"]["slices"]["pathological"]
    assert "Table 1 analog" in (out / "ph_table.txt").read_text()
    assert (out / "report.html").stat().st_size > 1000 and (out / "figures" / "dwi_examples.png").exists()
    for fold in (0, 1):
        assert (out / "dwi" / f"fold_{fold}" / "paired" / "best.pt").exists()
    rows = (out / "metrics" / "slices.csv").read_text().splitlines()
    assert len(rows) > 10 and "healthiness" in rows[0]
    # resume: every model is finished, nothing trains again, the same table comes back
    before = (out / "dwi" / "fold_0" / "paired" / "last.pt").stat().st_mtime_ns
    code, _, err = run_cli(capsys, "recipe", "pseudo-healthy", "--out", str(out), "--resume")
    assert code == 0, err
    assert (out / "dwi" / "fold_0" / "paired" / "last.pt").stat().st_mtime_ns == before
    assert json.loads((out / "ph_table.json").read_text())["text"] == table["text"]
    code, _, err = run_cli(capsys, "report", str(out))
    assert code == 0, err
    # predict: a pseudo-healthy image and a pathology map on the case grid
    pred = tmp_path / "pred"
    code, text, err = run_cli(capsys, "predict", "--model", str(out / "dwi" / "fold_0" / "paired"),
                              "--input", str(data), "--out", str(pred))
    assert code == 0, err
    case = toy_cases[0]
    ph = nib.load(pred / case.id / "pseudo_healthy.nii.gz")
    pm = nib.load(pred / case.id / "pathology_map.nii.gz")
    assert ph.shape == pm.shape == case.spatial_shape
    assert np.allclose(ph.affine, case.affine, atol=1e-4)
    assert 0 <= float(np.asanyarray(pm.dataobj).min()) and float(np.asanyarray(pm.dataobj).max()) <= 1
    assert json.loads((pred / "cases.json").read_text())[0]["pathology_map"] == "S lesion probability"
    code, _, err = run_cli(capsys, "predict", "--model", str(out / "dwi" / "fold_0" / "paired"), "--input", str(data),
                           "--out", str(tmp_path / "pred2"), "--threshold", "0.4")
    assert code == 2 and "alone and without --threshold" in err


def _set_masks(root, fn):
    for path in sorted(root.rglob("lesion.nii.gz")):
        img = nib.load(path)
        nib.save(nib.Nifti1Image(fn(np.asanyarray(img.dataobj)).astype(np.uint8), img.affine), path)


@pytest.mark.parametrize("edit, message", [
    (lambda root: _set_masks(root, lambda m: np.where(m > 0, 2, 0)), "not binary"),
    (lambda root: _set_masks(root, lambda m: np.zeros_like(m)), "no pathological slice"),
    (lambda root: _set_masks(root, lambda m: np.ones_like(m)), "no healthy slice"),
    (lambda root: [p.unlink() for p in root.rglob("lesion.nii.gz")], "lesion"),
])
def test_bad_input_one_line_exit_2_nothing_written(capsys, tmp_path, toy_cases, edit, message):
    data = _dwi_dataset(tmp_path, toy_cases, edit)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "recipe", "pseudo-healthy", "--data", str(data), "--out", str(out), *RECIPE)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_shipped_yaml_configs_are_the_python_ones():
    from strokesynth.config import to_dict
    from strokesynth.recipes.pseudo_healthy import CONFIGS, load_recipe_config, paper_config, tiny_config

    assert to_dict(load_recipe_config(CONFIGS / "tiny.yaml")) == to_dict(tiny_config())
    assert to_dict(load_recipe_config(CONFIGS / "paper.yaml")) == to_dict(paper_config())
    cfg = load_recipe_config("tiny", ["system.run.epochs=3"])
    assert cfg.system.run.epochs == 3 and cfg.system.optim.lr == 1e-3


def test_describe_prints_the_paper_networks(capsys):
    code, out, err = run_cli(capsys, "describe", "--recipe", "pseudo-healthy", "--config", "paper")
    assert code == 0, err
    assert "1,957,505" in out and "8,981,057" in out and "1x8x8" in out  # G, S, critics at 128 px


def test_docs_quote_the_saved_tiny_table():
    """docs/pseudo_healthy.md quotes docs/pseudo_healthy/tiny_table.txt (the run's ph_table.txt) verbatim."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "pseudo_healthy.md").read_text()
    block = doc.split("<!-- ph-numbers -->")[1].split("<!-- /ph-numbers -->")[0]
    saved = (root / "docs" / "pseudo_healthy" / "tiny_table.txt").read_text()
    assert saved.strip() and saved.strip() in block
