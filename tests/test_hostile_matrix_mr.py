"""The hostile matrix for the commands that read whole-brain MR studies with label maps.

``recipe labelmap-augmentation --data`` and ``synth-db --healthy`` against bad data sets, bad
checkpoints and bad options; the same rules as tests/test_hostile_matrix.py: one ``error:`` line,
exit 2, no traceback, nothing created next to the output, an existing output unchanged.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from test_hostile_matrix import _assert_clean, _snapshot, unreadable

from conftest import run_cli

#: micro settings: a pair that wrongly passed validation would still end within seconds (and fail)
MICRO = ["phantom.size=32", "translation.size=32", "translation.num_downs=5", "translation.ngf=4",
         "translation.spade_channels=[8,8,4]", "translation.spade_hidden=4", "translation.latent=8",
         "translation.cycle_ngf=4", "translation.n_blocks=1", "translation.ndf=4", "translation.run.epochs=1",
         "lesion_gan.run.epochs=1", "lesion_gan.latent=8", "lesion_gan.generator_channels=[8,4]",
         "lesion_gan.critic_channels=[4]", "n_synthetic=1", "finetune_cases=[]", "fractions=[]",
         "segmenter.data.size=[32,32]", "segmenter.model.channels=[4,8,16]",
         "segmenter.model.strides=[[2,2,2],[2,2,2]]", "segmenter.run.epochs=1", "segmenter.run.steps_per_epoch=1"]


def _sets() -> list[str]:
    return [a for s in MICRO for a in ("--set", s)]


@pytest.fixture(scope="module")
def mr(tmp_path_factory):
    """Phantom MR studies (3 stroke + 3 healthy, 32x32x8) in the plain layout, a healthy-only copy,
    and a 1-epoch lesion GAN and translation model fitted on them."""
    from strokesynth.data.label_maps import load_label_table
    from strokesynth.data.mr_volumes import LesionMasks, TranslationSlices, prepare_mr_case
    from strokesynth.engine.config import RunConfig
    from strokesynth.engine.loop import fit
    from strokesynth.io import write_cohort
    from strokesynth.phantom import PhantomConfig
    from strokesynth.phantom.mr_study import generate_mr_studies
    from strokesynth.systems.labelmap import TranslationConfig, build_translation
    from strokesynth.systems.lesion_gan import LesionGANConfig, LesionWGAN

    root = tmp_path_factory.mktemp("hostile_mr")
    cfg = PhantomConfig(subjects=3, healthy=3, seed=2)
    cfg.mr.size, cfg.mr.spacing_mm, cfg.mr.slices, cfg.mr.slice_mm = 32, 6.0, 8, 20.0
    cases, _ = generate_mr_studies(cfg)
    data = write_cohort(cases, root / "mr", layout="plain")
    healthy = write_cohort([c for c in cases if not np.asarray(c["lesion"].array).any()], root / "healthy",
                           layout="plain")
    table = load_label_table("phantom")
    vols = [prepare_mr_case(c, table, size=32) for c in cases]
    tcfg = TranslationConfig(model="pix2pix", size=32, ngf=4, num_downs=5, ndf=4,
                             run=RunConfig(epochs=1, batch_size=4, selection="last", threads=2))
    fit(lambda: build_translation(tcfg), TranslationSlices(vols, table.n_classes), None, root / "tr", tcfg.run, seed=0)
    gcfg = LesionGANConfig(shape=[32, 32, 8], latent=8, generator_channels=[8, 4], critic_channels=[4],
                           run=RunConfig(epochs=1, batch_size=2, selection="last"))

    def full() -> LesionWGAN:  # masks that cover the grid, so that injection fits after one epoch
        s = LesionWGAN(gcfg)
        s.generator.empty_bias = 5.0
        s.generator.reset_output()
        return s

    fit(full, LesionMasks([v for v in vols if v.lesion.any()]), None, root / "gan", gcfg.run, seed=0)
    return {"data": data, "healthy": healthy, "gan": root / "gan" / "best.pt", "tr": root / "tr" / "best.pt"}


def _rewrite(path: Path, array: np.ndarray) -> None:
    img = nib.load(str(path))
    nib.save(nib.Nifti1Image(array, img.affine), str(path))


def _first(data: Path, lesion: bool | None = None) -> Path:
    """The first case folder (with a lesion, without one, or either)."""
    for case in sorted(p for p in data.iterdir() if p.is_dir()):
        has = bool(np.asarray(nib.load(str(case / "lesion.nii.gz")).dataobj).any())
        if lesion is None or has == lesion:
            return case
    raise AssertionError("no such case")


def _bad_mr(kind: str, tmp: Path, good: Path) -> Path:
    """A copy of the MR data set ``good`` (or a path) with one problem."""
    if (path := unreadable(kind, tmp)) is not None:
        return path
    data = Path(shutil.copytree(good, tmp / f"data_{kind}"))
    case = _first(data)
    anatomy = case / "anatomy.nii.gz"
    arr = np.asanyarray(nib.load(str(anatomy)).dataobj)
    if kind == "nan":
        dwi = np.asanyarray(nib.load(str(case / "dwi.nii.gz")).dataobj).astype(np.float32)
        dwi[16, 16, 4] = np.nan
        _rewrite(case / "dwi.nii.gz", dwi)
    elif kind == "truncated":
        raw = gzip.decompress(anatomy.read_bytes())
        anatomy.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    elif kind == "label2":
        les = np.asanyarray(nib.load(str(case / "lesion.nii.gz")).dataobj).astype(np.uint8)
        _rewrite(case / "lesion.nii.gz", (les * 2).astype(np.uint8))
    elif kind == "unmapped":
        arr = arr.copy()
        arr[0, 0, 0] = 77
        _rewrite(anatomy, arr)
    elif kind == "off_grid":  # a label map that is not on its DWI's grid
        _rewrite(anatomy, np.ascontiguousarray(arr[:, :, :-2]))
    elif kind == "4d_as_3d":
        _rewrite(anatomy, np.stack([arr, arr], axis=-1))
    elif kind == "no_anatomy":
        for c in data.iterdir():
            if c.is_dir():
                (c / "anatomy.nii.gz").unlink()
    elif kind == "lesion_in_healthy":  # only for the healthy set: a lesion class in a "healthy" map
        arr = arr.copy()
        arr[14:18, 14:18, 3:5] = 11
        _rewrite(anatomy, arr)
    return data


MR_KINDS = ["missing", "file", "empty", "junk", "nan", "truncated", "label2", "unmapped", "off_grid", "4d_as_3d",
            "no_anatomy"]


@pytest.mark.parametrize("kind", MR_KINDS)
def test_labelmap_recipe_bad_data(tmp_path, capsys, mr, kind):
    data = _bad_mr(kind, tmp_path, mr["data"])
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "recipe", "labelmap-augmentation", "--data", str(data), *_sets(), "--out", str(out))
    _assert_clean(code, err, out, None)


@pytest.mark.parametrize("kind", [k for k in MR_KINDS if k not in ("label2",)] + ["lesion_in_healthy"])
def test_synth_db_bad_healthy_maps(tmp_path, capsys, mr, kind):
    if kind == "nan":
        pytest.skip("documented: synth-db reads only the healthy label maps, not the DWI spoilt here")
    data = _bad_mr(kind, tmp_path, mr["healthy"])
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "synth-db", "--healthy", str(data), "--lesion-gan", str(mr["gan"]),
                           "--translator", str(mr["tr"]), "-n", "1", "--out", str(out))
    _assert_clean(code, err, out, None)


@pytest.mark.parametrize("args", [
    ["--lesion-gan", "{tmp}/missing.pt"],
    ["--lesion-gan", "{tmp}/junk.pt"],
    ["--lesion-gan", "{tr}"],  # a translation model where the lesion GAN goes
    ["--translator", "{gan}"],
    ["--translator", "{tmp}/junk.pt"],
    ["-n", "0"],
    ["-n", "-3"],
    ["--retries", "0"],
    ["--table", "nosuch"],
    ["--table", "freesurfer_aseg"],  # a table of other classes than the translation model's
    ["--layout", "nnunet"],
    ["--device", "tpu"],
])
def test_synth_db_bad_options(tmp_path, capsys, mr, args):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    given = {"--lesion-gan": str(mr["gan"]), "--translator": str(mr["tr"]), "-n": "1"}
    args = [a.format(tmp=tmp_path, gan=mr["gan"], tr=mr["tr"]) for a in args]
    given.update({args[0]: args[1]})
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "synth-db", "--healthy", str(mr["healthy"]),
                           *[a for kv in given.items() for a in kv], "--out", str(out))
    _assert_clean(code, err, out, None)


@pytest.mark.parametrize("args", [
    ["--config", "no_such_config"],
    ["--table", "{tmp}/missing.yaml"],
    ["--set", "nosuch=1"],
    ["--set", "translation.size=30"],
    ["--set", "models=[nosuch]"],
    ["--set", "lesion_gan.n_critic=0"],
    ["--set", "seeds=[]"],
    ["--device", "tpu"],
    ["--resume"],
])
def test_labelmap_recipe_bad_options(tmp_path, capsys, mr, args):
    args = [a.format(tmp=tmp_path) for a in args]
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "recipe", "labelmap-augmentation", "--data", str(mr["data"]), *_sets(), *args,
                           "--out", str(out))
    _assert_clean(code, err, out, None)


@pytest.mark.parametrize("command", ["labelmap-augmentation", "synth-db"])
def test_existing_output_or_a_file_is_never_touched(tmp_path, capsys, mr, command):
    def cmd(out: Path) -> list[str]:
        if command == "synth-db":
            return ["synth-db", "--healthy", str(mr["healthy"]), "--lesion-gan", str(mr["gan"]), "--translator",
                    str(mr["tr"]), "-n", "1", "--out", str(out)]
        return ["recipe", "labelmap-augmentation", "--data", str(mr["data"]), *_sets(), "--out", str(out)]

    out = tmp_path / "out"
    out.mkdir()
    (out / "yesterday.txt").write_text("results")
    before = _snapshot(out)
    code, _, err = run_cli(capsys, *cmd(out))
    _assert_clean(code, err, out, before)
    afile = tmp_path / "afile"
    afile.write_text("a file where a folder should go")
    code, _, err = run_cli(capsys, *cmd(afile))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-1500:]
    assert afile.read_text() == "a file where a folder should go"
