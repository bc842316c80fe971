from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from strokesynth.data.augment import AugmentConfig
from strokesynth.data.config import DataConfig, fold_datasets
from strokesynth.data.datasets import SliceDataset, VolumeDataset
from strokesynth.data.geometry import PlaneGeometry
from strokesynth.data.splits import subject_kfold
from strokesynth.errors import DataError
from strokesynth.io import open_cohort, write_volume

MODS = ["ct", "cbf", "cbv", "mtt", "tmax"]


@pytest.mark.parametrize("size", [(48, 40), (24, 24), (32, 32)])
def test_slice_dataset_assemble_roundtrip(isles2018_dir, size):
    cohort = open_cohort(isles2018_dir)
    ds = SliceDataset(cohort.cases, MODS, size=size)
    s = ds[0]
    assert s["image"].shape == (5, *size) and s["image"].dtype == torch.float32
    assert s["label"].shape == (1, *size) and s["label"].dtype == torch.int64
    for ci, case in enumerate(cohort.cases):
        items = ds.slices_of(ci)
        assert len(items) == case.spatial_shape[2]
        labels = torch.stack([ds[i]["label"] for i in items])
        vol = ds.assemble(ci, labels, kind="label")
        expected = case.label.array.copy()
        if size[0] < 32:  # cropped: outside the crop comes back as 0
            keep = np.zeros_like(expected, bool)
            keep[4:28, 4:28] = True
            expected[~keep] = 0
        assert np.array_equal(vol.array, expected)
        assert np.array_equal(vol.affine, case.affine)


def test_prediction_written_with_input_affine(tmp_path, isles2018_dir):
    cohort = open_cohort(isles2018_dir)
    ds = SliceDataset(cohort.cases, MODS, size=(64, 64), mode="resample")
    items = ds.slices_of(1)
    probs = torch.stack([ds[i]["image"][1:2] for i in items])  # any per-slice map
    vol = ds.assemble(1, probs)
    path = write_volume(vol, tmp_path / "prob.nii.gz")
    import nibabel as nib

    assert np.allclose(nib.load(str(path)).affine, cohort.cases[1].affine, atol=1e-6)
    assert vol.shape == cohort.cases[1].spatial_shape


def test_cache_matches_memory_and_follows_file_changes(tmp_path, plain_dir):
    cohort = open_cohort(plain_dir)
    mem = SliceDataset(cohort.cases, MODS, size=(32, 32))
    disk = SliceDataset(cohort.cases, MODS, size=(32, 32), cache_dir=tmp_path / "cache")
    disk.prepare_cache()
    assert len(list((tmp_path / "cache").glob("*_img.npy"))) == len(cohort)
    for i in range(len(mem)):
        a, b = mem[i], disk[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    # a changed input file gives a new cache entry, never a stale one
    case = cohort.cases[0]
    arr = case["cbf"].array * 0
    write_volume(case["cbf"].with_array(arr), case["cbf"].path)
    fresh = SliceDataset(open_cohort(plain_dir).cases, MODS, size=(32, 32), cache_dir=tmp_path / "cache")
    assert float(fresh[0]["image"][1].abs().sum()) == 0.0


@pytest.mark.parametrize("size,mode", [((16, 16), "resample"), ((40, 24), "pad_crop"), ((48, 48), "resample")])
def test_disk_cache_holds_the_working_grid(tmp_path, plain_dir, size, mode):
    """Cached arrays are fitted once to the working grid; samples (augmented, patched) equal the
    in-memory ones fitted slice by slice, and native channels and assembly stay on the case's grid."""
    cohort = open_cohort(plain_dir)
    kw = dict(size=size, mode=mode, augment=AugmentConfig(p=1.0), seed=3, patch=(12, 12), crop_patches=True)
    mem = SliceDataset(cohort.cases, MODS, **kw)
    disk = SliceDataset(cohort.cases, MODS, cache_dir=tmp_path / "cache", **kw)
    disk.prepare_cache()
    cached = sorted((tmp_path / "cache").glob("*_img.npy"))
    assert len(cached) == len(cohort) and disk.store.fitted and not mem.store.fitted
    assert np.load(cached[0], mmap_mode="r").shape[1:3] == size
    for i in range(len(mem)):
        a, b = mem[i], disk[i]
        assert torch.allclose(a["image"], b["image"], atol=1e-6) and torch.equal(a["label"], b["label"])
    for ci, case in enumerate(cohort.cases):
        assert np.array_equal(disk.native_channel(ci, "tmax"), mem.native_channel(ci, "tmax"))
        assert disk.native_channel(ci, "tmax").shape == case.spatial_shape
        whole = torch.stack([disk[j]["label"] for j in disk.slices_of(ci)])
        assert disk.assemble(ci, whole, kind="label").shape == case.spatial_shape
    # another working grid is another cache entry, never the fitted arrays of the first
    other = SliceDataset(cohort.cases, MODS, size=(20, 20), mode=mode, cache_dir=tmp_path / "cache")
    other.prepare_cache()
    assert other[0]["image"].shape == (5, 20, 20)
    assert len(list((tmp_path / "cache").glob("*_img.npy"))) == 2 * len(cohort)


def test_disk_cache_of_a_4d_series_frame_by_frame(tmp_path, plain_dir):
    """A raw CTP is read in its stored dtype and fitted frame by frame into the cache: the same
    channels as normalising the whole float series and fitting each slice."""
    cohort = open_cohort(plain_dir)
    mods = ["ct", "ctp", "cbf"]
    mem = SliceDataset(cohort.cases, mods, size=(16, 16), mode="resample")
    disk = SliceDataset(cohort.cases, mods, size=(16, 16), mode="resample", cache_dir=tmp_path / "c")
    assert disk[0]["image"].shape[0] == 2 + cohort.cases[0]["ctp"].shape[3]
    for i in range(0, len(mem), 3):
        torch.testing.assert_close(mem[i]["image"], disk[i]["image"], rtol=1e-5, atol=1e-5)


def test_volume_dataset_disk_cache_on_the_working_grid(tmp_path, plain_dir):
    cohort = open_cohort(plain_dir)
    mem = VolumeDataset(cohort.cases, MODS, size=(16, 16), mode="resample", z_multiple=4)
    disk = VolumeDataset(cohort.cases, MODS, size=(16, 16), mode="resample", z_multiple=4, cache_dir=tmp_path / "c")
    for i in range(len(mem)):
        assert torch.allclose(mem[i]["image"], disk[i]["image"], atol=1e-6)
        assert torch.equal(mem[i]["label"], disk[i]["label"])


def test_augmentation_deterministic_per_epoch(isles2018_dir):
    cases = open_cohort(isles2018_dir).cases
    a = SliceDataset(cases, MODS, size=(32, 32), augment=AugmentConfig(p=1.0), seed=5)
    b = SliceDataset(cases, MODS, size=(32, 32), augment=AugmentConfig(p=1.0), seed=5)
    assert torch.equal(a[3]["image"], b[3]["image"])
    b.set_epoch(1)
    assert not torch.equal(a[3]["image"], b[3]["image"])
    # same result through a loader with workers
    loader = DataLoader(a, batch_size=4, num_workers=2, shuffle=False)
    first = next(iter(loader))
    assert torch.equal(first["image"][3], a[3]["image"])


def test_volume_dataset(isles2018_dir):
    cases = open_cohort(isles2018_dir).cases
    ds = VolumeDataset(cases, MODS + ["ctp"], size=(32, 32), z_multiple=4)
    for i, case in enumerate(cases):
        s = ds[i]
        assert s["image"].shape[0] == 5 + case["ctp"].shape[3]
        assert s["image"].shape[3] % 4 == 0 and s["z"] == case.spatial_shape[2]
        vol = ds.assemble(i, s["label"], kind="label")
        assert np.array_equal(vol.array, case.label.array)


def test_dataset_refuses_missing_or_own_grid(isles22_dir):
    cases = open_cohort(isles22_dir).cases
    with pytest.raises(DataError, match="missing modality ct"):
        SliceDataset(cases, ["ct"])
    with pytest.raises(DataError, match="own grid"):
        SliceDataset(cases, ["dwi", "flair"])
    ds = SliceDataset(cases, ["dwi", "adc"], size=(128, 128))
    assert ds[40]["image"].shape == (2, 128, 128)


def test_fold_datasets(isles2018_dir):
    cases = open_cohort(isles2018_dir).cases
    cfg = DataConfig(size=(32, 32))
    splits = subject_kfold(cases, 2, 0)
    train, val = fold_datasets(cases, cfg, splits, 0)
    assert train.augment is not None and val.augment is None
    assert {c.id for c in train.cases}.isdisjoint({c.id for c in val.cases})


def test_plane_geometry_inverse():
    x = torch.arange(2 * 7 * 9, dtype=torch.float32).reshape(2, 7, 9)
    for target in [(12, 12), (7, 9), (5, 12), (4, 4)]:
        g = PlaneGeometry((7, 9), target)
        back = g.to_original(g.to_target(x))
        kept = back != 0
        assert torch.equal(back[kept], x[kept])
        if target[0] >= 7 and target[1] >= 9:
            assert torch.equal(back, x)


def test_persistent_workers_follow_set_epoch(isles2018_dir):
    cases = open_cohort(isles2018_dir).cases
    ds = SliceDataset(cases, MODS, size=(32, 32), augment=AugmentConfig(p=1.0), seed=1)
    loader = DataLoader(ds, batch_size=len(ds), num_workers=1, persistent_workers=True, shuffle=False)
    first = next(iter(loader))["image"]
    ds.set_epoch(4)
    second = next(iter(loader))["image"]
    assert not torch.equal(first, second)
    assert torch.equal(second[2], ds[2]["image"])


def test_training_patches_cut_from_the_slice_and_favour_lesion(isles2018_dir):
    cohort = open_cohort(isles2018_dir)
    whole = SliceDataset(cohort.cases, MODS, size=(64, 64), mode="resample", seed=3)
    always = SliceDataset(cohort.cases, MODS, size=(64, 64), mode="resample", seed=3, patch=(24, 16),
                          crop_patches=True, patch_foreground=1.0)
    lesion_items = np.flatnonzero(always.lesion_flags())
    assert len(lesion_items) >= 4
    for i in lesion_items[:4]:
        full, cut = whole[int(i)], always[int(i)]
        assert cut["image"].shape == (5, 24, 16) and cut["label"].shape == (1, 24, 16)
        y0, x0 = cut["patch"]
        assert torch.equal(cut["image"], full["image"][:, y0:y0 + 24, x0:x0 + 16])  # the same pixels, not resampled
        assert torch.equal(cut["label"], full["label"][:, y0:y0 + 24, x0:x0 + 16])
        assert cut["label"].any()  # centred on a lesion pixel
        assert always[int(i)]["patch"] == cut["patch"]  # same (seed, epoch, item): same patch
    anywhere = SliceDataset(cohort.cases, MODS, size=(64, 64), mode="resample", seed=3, patch=(24, 16),
                            crop_patches=True, patch_foreground=0.0)
    corners = {anywhere[int(i)]["patch"] for i in range(len(anywhere))}
    assert len(corners) > len(anywhere) // 2  # spread over the slice
    # larger than the slice: centred and zero-padded
    big = SliceDataset(cohort.cases, MODS, size=(32, 32), mode="resample", patch=(48, 48), crop_patches=True)
    s, ref = big[0], SliceDataset(cohort.cases, MODS, size=(32, 32), mode="resample")[0]
    assert s["image"].shape == (5, 48, 48) and s["patch"] == (-8, -8)
    assert torch.equal(s["image"][:, 8:40, 8:40], ref["image"]) and not s["image"][:, :8].any()


def test_patch_config_reaches_training_and_inference_datasets(isles2018_dir):
    from strokesynth.errors import ConfigError

    cohort = open_cohort(isles2018_dir)
    cfg = DataConfig(size=(64, 64), mode="resample", patch=(32, 32))
    splits = subject_kfold(cohort.cases, k=2, seed=0)
    train, held = fold_datasets(cohort.cases, cfg, splits, 0)
    assert train.crop_patches and train[0]["image"].shape[-2:] == (32, 32)
    assert held.patch == (32, 32) and not held.crop_patches and held[0]["image"].shape[-2:] == (64, 64)
    with pytest.raises(ConfigError, match="data.patch"):
        DataConfig(patch=(32, 0))
    with pytest.raises(ConfigError, match="multiples of 16"):
        DataConfig(patch=(40, 32))
    vtrain, vheld = fold_datasets(cohort.cases, cfg, splits, 0, kind="volumes")
    assert vtrain.crop_patches and vtrain[0]["image"].shape[1:3] == (32, 32)
    assert vheld.patch == (32, 32) and not vheld.crop_patches and vheld[0]["image"].shape[1:3] == (64, 64)


def test_volume_patches_keep_z_and_follow_the_lesion(isles2018_dir):
    """3D blocks are cut in plane with every slice kept; with patch_foreground 1 each holds lesion."""
    cohort = open_cohort(isles2018_dir)
    ds = VolumeDataset(cohort.cases, MODS, size=(64, 64), mode="resample", z_multiple=4, patch=(32, 32),
                       crop_patches=True, patch_foreground=1.0, seed=1)
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == (5, 32, 32, ds[i]["label"].shape[-1]) and s["label"].shape[1:3] == (32, 32)
        assert s["image"].shape[-1] % 4 == 0
        if ds.lesion_flags()[i]:
            assert s["label"].sum() > 0


def test_train_3d_model_on_in_plane_blocks(capsys, tmp_path, plain_dir):
    """A 3D segmenter trains on (h, w, Z') blocks and predicts every held-out case by sliding
    windows, back on the case's own grid."""
    from strokesynth.io import read_volume

    from conftest import run_cli

    out = tmp_path / "run"
    configs = Path(__file__).resolve().parents[2] / "configs" / "seg"
    code, _, err = run_cli(capsys, "train", "--config", str(configs / "unet3d_focal_tiny.yaml"),
                           "--set", f"data.dataset={plain_dir}", "--set", "data.size=[64,64]",
                           "--set", "data.patch=[32,32]", "--set", "run.folds=2", "--set", "run.epochs=1",
                           "--set", "run.steps_per_epoch=2", "--out", str(out))
    assert code == 0, err
    assert "patch:\n  - 32\n  - 32" in (out / "config.yaml").read_text()
    cases = {c.id: c for c in open_cohort(plain_dir).cases}
    preds = sorted((out / "predictions").glob("*/prob.nii.gz"))
    assert len(preds) == len(cases)  # every case held out once
    for p in preds:
        vol = read_volume(p)
        assert vol.spatial_shape == cases[p.parent.name].spatial_shape
        assert np.isfinite(vol.array).all() and 0 <= vol.array.min() and vol.array.max() <= 1


@pytest.mark.parametrize(("config", "patch", "says"), [
    ("unet2d_focal_tiny", "[40,32]", "multiples of 16"),
])
def test_train_refuses_a_bad_patch_before_writing_anything(capsys, tmp_path, plain_dir, config, patch, says):
    from conftest import run_cli

    out = tmp_path / "run"
    configs = Path(__file__).resolve().parents[2] / "configs" / "seg"
    code, _, err = run_cli(capsys, "train", "--config", str(configs / f"{config}.yaml"),
                           "--set", f"data.dataset={plain_dir}", "--set", f"data.patch={patch}", "--out", str(out))
    assert code == 2 and err.startswith("error: ") and says in err and "Traceback" not in err
    assert not out.exists()
