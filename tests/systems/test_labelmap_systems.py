"""Label map -> DWI systems, the lesion WGAN and the synthetic database on toy data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from strokesynth.data.case import Case
from strokesynth.data.label_maps import load_label_table
from strokesynth.data.mr_volumes import LesionMasks, MRVolume, TranslationSlices
from strokesynth.data.volume import Volume
from strokesynth.engine.config import RunConfig
from strokesynth.engine.loop import fit
from strokesynth.engine.system import Runtime
from strokesynth.errors import DataError, OutputError
from strokesynth.systems.labelmap import TranslationConfig, build_translation, translate_volume
from strokesynth.systems.lesion_gan import LesionGANConfig, LesionWGAN

TABLE = load_label_table("phantom")
AFF = np.diag([3.0, 3.0, 10.0, 1.0])


def _anatomy(rng: np.random.Generator, shape=(32, 32, 8)) -> np.ndarray:
    """A toy brain: CSF shell, GM/WM per hemisphere, a ventricle, random shifts."""
    lab = np.zeros(shape, np.uint8)
    dx, dy = rng.integers(-2, 3, 2)
    lab[4 + dx:28 + dx, 4 + dy:28 + dy, 1:7] = 1
    lab[6 + dx:26 + dx, 6 + dy:16 + dy, 1:7] = 3
    lab[6 + dx:26 + dx, 16 + dy:26 + dy, 1:7] = 4
    lab[10 + dx:22 + dx, 9 + dy:14 + dy, 2:6] = 5
    lab[10 + dx:22 + dx, 18 + dy:23 + dy, 2:6] = 6
    lab[14 + dx:18 + dx, 14 + dy:18 + dy, 2:6] = 2
    return lab


#: toy DWI per class (signed units): CSF dark, GM brighter than WM, lesion bright
LEVEL = {0: -1.0, 1: -0.8, 2: -0.8, 3: 0.1, 4: 0.1, 5: -0.2, 6: -0.2, 11: 0.9}


def _volume(i: int, lesion: bool) -> MRVolume:
    rng = np.random.default_rng(i)
    lab = _anatomy(rng)
    les = np.zeros(lab.shape, bool)
    if lesion:
        x, y = rng.integers(6, 14, 2)
        les[x:x + 12, y:y + 12, 2:6] = True
        les &= np.isin(lab, [3, 4, 5, 6])
        lab[les] = TABLE.lesion
    img = np.vectorize(LEVEL.get)(lab).astype(np.float32)
    return MRVolume(f"c{i}", f"c{i}", lab, img, lab > 0, les, (3.0, 3.0, 10.0), AFF)


def _tiny(model: str) -> TranslationConfig:
    return TranslationConfig(model=model, size=32, ngf=8, num_downs=5, spade_channels=[16, 8, 8], spade_hidden=8,
                             latent=8, cycle_ngf=4, n_blocks=1, ndf=8,
                             run=RunConfig(epochs=1, batch_size=4, selection="last", threads=2))


def test_pix2pix_learns_the_label_to_intensity_map():
    torch.manual_seed(0)
    vols = [_volume(i, lesion=i < 3) for i in range(4)]
    ds = TranslationSlices(vols, TABLE.n_classes)
    cfg = _tiny("pix2pix")
    cfg.optim.lr = 2e-3
    cfg.dropout = 0.0
    system = build_translation(cfg)
    rt = Runtime(system)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    before = system.validate(ds, rt)["val_l1"]
    for _ in range(12):
        for batch in loader:
            system.train_step(batch, rt)
    after = system.validate(ds, rt)
    # measured: L1 0.176 -> 0.062, lesion/parenchyma ratio 1.00 -> 1.36 (real 1.80)
    assert after["val_l1"] < before / 1.8, (before, after)
    assert after["val_lesion_ratio_generated"] > 1.15, after  # the lesion shows: brighter than parenchyma


@pytest.mark.parametrize("model", ["spade", "cyclegan"])
def test_spade_and_cyclegan_train_save_and_reload(tmp_path, model):
    vols = [_volume(i, lesion=True) for i in range(2)]
    ds = TranslationSlices(vols, TABLE.n_classes)
    cfg = _tiny(model)
    res = fit(lambda: build_translation(cfg), ds, None, tmp_path / model, cfg.run, seed=0)
    hist = res["history"][-1]
    assert all(np.isfinite(v) for k, v in hist.items() if k.startswith("loss"))
    from strokesynth.engine.checkpoint import load_system

    system = load_system(tmp_path / model / "best.pt")
    torch.manual_seed(3)
    a = translate_volume(system, vols[0].classes, TABLE.n_classes)
    torch.manual_seed(3)
    b = translate_volume(res["system"], vols[0].classes, TABLE.n_classes)
    assert a.shape == vols[0].classes.shape and np.allclose(a, b, atol=1e-5)
    assert (a[vols[0].classes == 0] == -1).all()


def test_lesion_wgan_updates_the_generator_every_n_critic_steps():
    vols = [_volume(i, lesion=True) for i in range(3)]
    masks = LesionMasks(vols)
    cfg = LesionGANConfig(shape=list(masks.shape), latent=8, generator_channels=[8, 8, 4], critic_channels=[4, 8],
                          n_critic=2)
    torch.manual_seed(0)
    system = LesionWGAN(cfg)
    rt = Runtime(system)
    batch = {"mask": torch.stack([masks[i]["mask"] for i in range(3)])}
    g0 = [p.detach().clone() for p in system.generator.parameters()]
    c0 = [p.detach().clone() for p in system.critic.parameters()]
    out = system.train_step(batch, rt)
    assert "loss_g" not in out and out["gradient_penalty"] >= 0
    assert all(torch.equal(a, b) for a, b in zip(g0, system.generator.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(c0, system.critic.parameters(), strict=True))
    out = system.train_step(batch, rt)
    assert "loss_g" in out
    assert not all(torch.equal(a, b) for a, b in zip(g0, system.generator.parameters(), strict=True))
    assert system.extra_state() == {"steps": 2}
    s = system.sample(2, seed=4)
    assert s.shape == (2, *masks.shape) and torch.equal(s, system.sample(2, seed=4))


def test_lesion_wgan_averaged_generator_follows_saves_and_samples(tmp_path):
    vols = [_volume(i, lesion=True) for i in range(3)]
    masks = LesionMasks(vols)
    cfg = LesionGANConfig(shape=list(masks.shape), latent=8, generator_channels=[8, 8, 4], critic_channels=[4, 8],
                          n_critic=1, ema_decay=0.9, run=RunConfig(epochs=2, batch_size=3, selection="last"))
    with pytest.raises(Exception, match="ema_decay"):
        LesionGANConfig(ema_decay=1.0)
    torch.manual_seed(0)
    system = LesionWGAN(cfg)
    assert set(system.networks) == {"generator", "critic", "generator_ema"}
    assert set(system.optimizers) == {"generator", "critic"}
    assert not any(p.requires_grad for p in system.generator_ema.parameters())
    rt = Runtime(system)
    batch = {"mask": torch.stack([masks[i]["mask"] for i in range(3)])}
    e0 = [p.detach().clone() for p in system.generator_ema.parameters()]
    system.train_step(batch, rt)
    # first generator step: decay min(0.9, 1/10) = 0.1, so the average moves 90 % of the way
    for a0, avg, cur in zip(e0, system.generator_ema.parameters(), system.generator.parameters(), strict=True):
        torch.testing.assert_close(avg, a0 + 0.9 * (cur - a0))
    for _ in range(3):
        system.train_step(batch, rt)
    assert not all(torch.equal(a, b) for a, b in zip(system.generator_ema.parameters(),
                                                      system.generator.parameters(), strict=True))
    # sampling draws from the average: a generator whose output is pushed to "lesion everywhere"
    # does not change the samples while the average is untouched
    before = system.sample(2, seed=3)
    with torch.no_grad():
        for p in system.generator.parameters():
            p.add_(1.0)
    assert torch.equal(before, system.sample(2, seed=3))
    # checkpoints carry the average and load with weights_only
    from strokesynth.engine.checkpoint import load_system

    fit(lambda: LesionWGAN(cfg), masks, None, tmp_path / "gan", cfg.run, seed=0)
    back = load_system(tmp_path / "gan" / "best.pt")
    assert back.generator_ema is not None
    ck = torch.load(tmp_path / "gan" / "best.pt", weights_only=True)
    for k, v in back.generator_ema.state_dict().items():
        torch.testing.assert_close(v, ck["networks"]["generator_ema"][k])
    assert torch.equal(back.sample(2, seed=1), back.sample(2, seed=1))


def _checkpoints(tmp_path):
    """A 1-epoch translation model and a lesion GAN whose masks cover the grid (so injection fits)."""
    vols = [_volume(i, lesion=True) for i in range(2)]
    tcfg = _tiny("pix2pix")
    fit(lambda: build_translation(tcfg), TranslationSlices(vols, TABLE.n_classes), None, tmp_path / "tr", tcfg.run,
        seed=0)
    gcfg = LesionGANConfig(shape=[32, 32, 8], latent=8, generator_channels=[8, 4], critic_channels=[4],
                           run=RunConfig(epochs=1, batch_size=2, selection="last"))

    def full() -> LesionWGAN:
        s = LesionWGAN(gcfg)
        s.generator.empty_bias = 5.0
        s.generator.reset_output()
        return s

    fit(full, LesionMasks(vols), None, tmp_path / "gan", gcfg.run, seed=0)
    # one epoch of steps cannot undo a +5 bias: samples cover most of the grid
    return tmp_path / "gan" / "best.pt", tmp_path / "tr" / "best.pt"


def _healthy_cases(n: int) -> list[Case]:
    out = []
    for i in range(n):
        lab = _anatomy(np.random.default_rng(100 + i))
        out.append(Case(f"h{i}", f"h{i}", {"anatomy": Volume(lab, AFF, kind="label")}))
    return out


def test_synthetic_db_complete_resumable_and_checked(tmp_path, monkeypatch):
    from strokesynth.io import open_cohort
    from strokesynth.io.integrity import check_dataset
    from strokesynth.recipes import synthetic_db

    gan, tr = _checkpoints(tmp_path)
    dest = tmp_path / "db"
    real = synthetic_db.synthesize_subject
    calls = {"n": 0}

    def dies_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(synthetic_db, "synthesize_subject", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        synthetic_db.build_synthetic_db(_healthy_cases(2), gan, tr, 4, dest, seed=1, echo=lambda s: None)
    assert not dest.exists()  # complete or nothing
    monkeypatch.setattr(synthetic_db, "synthesize_subject", real)
    said = []
    prov = synthetic_db.build_synthetic_db(_healthy_cases(2), gan, tr, 4, dest, seed=1, echo=said.append)
    assert said[0] == "resumed: 2 of 4 subjects were already written"
    assert [s["healthy_map"] for s in prov["subjects"]] == ["h0", "h1", "h0", "h1"]
    assert all(s["lesion_voxels"] >= 20 for s in prov["subjects"])
    cases = open_cohort(dest).cases
    assert len(cases) == 4 and json.loads((dest / "synthetic_db.json").read_text())["n"] == 4
    c = cases[0]
    les = np.asarray(c.label.array) > 0
    anat = np.asarray(c["anatomy"].array)
    assert (anat[les] == TABLE.lesion).all() and not np.isin(anat[les], [0, 1, 2]).any()
    assert np.isin(_anatomy(np.random.default_rng(100))[les], [3, 4, 5, 6]).all()  # parenchyma only
    dwi = np.asarray(c["dwi"].array)
    assert dwi.min() >= 0 and dwi.max() <= 1 and (dwi[anat == 0] == 0).all()
    assert check_dataset(dest).ok
    # the same command again is refused, not overwritten
    with pytest.raises(OutputError, match="not empty"):
        synthetic_db.build_synthetic_db(_healthy_cases(2), gan, tr, 4, dest, seed=1, echo=lambda s: None)
    # bad input: a label map off the GAN's grid, ids the table does not know
    bad = _healthy_cases(1)
    bad[0] = Case("h9", "h9", {"anatomy": Volume(np.zeros((32, 32, 6), np.uint8), AFF, kind="label")})
    with pytest.raises(DataError, match=r"h9: label map grid \(32, 32, 6\).*lesion GAN's \(32, 32, 8\)"):
        synthetic_db.build_synthetic_db(bad, gan, tr, 1, tmp_path / "db2", echo=lambda s: None)
    odd = _anatomy(np.random.default_rng(0))
    odd[0, 0, 0] = 77
    with pytest.raises(DataError, match="label ids 77 are not in the mapping table"):
        synthetic_db.build_synthetic_db([Case("h8", "h8", {"anatomy": Volume(odd, AFF, kind="label")})], gan, tr, 1,
                                        tmp_path / "db3", echo=lambda s: None)
    assert not (tmp_path / "db2").exists() and not (tmp_path / "db3").exists()
