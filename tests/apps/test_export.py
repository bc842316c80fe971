"""Export to TorchScript and ONNX, predict with onnxruntime, and the refusals (version, inputs)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import run_cli

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="onnx, onnxscript or onnxruntime not installed (pip install -e '.[onnx]')")


def _phantom_batch(full):
    """Every slice of the first phantom case as the model sees it ``(Z, C, H, W)``, and the model."""
    from strokesynth.data.config import make_dataset
    from strokesynth.io import open_cohort
    from strokesynth.recipes.cv import load_model

    model, cfg = load_model(full.parent / "run")
    ds = make_dataset(open_cohort(full).cases[:1], cfg.data, seed=0, with_label=False, kind="slices")
    return torch.stack([ds[i]["image"] for i in ds.slices_of(0)]), model


def _export(capsys, root, fmt: str):
    """``strokesynth export`` of the trained run into ``root/export_<fmt>``: (out, stdout, manifest)."""
    out = root / f"export_{fmt}"
    code, text, err = run_cli(capsys, "export", "--model", str(root / "run"), "--out", str(out), "--format", fmt)
    assert code == 0, err
    return out, text, json.loads((out / "export.json").read_text())


def test_torchscript_export_matches_pytorch_on_a_phantom_case(capsys, trained):
    root, full, _ = trained
    out, text, manifest = _export(capsys, root, "torchscript")
    assert manifest["system"] == "segmenter" and manifest["strokesynth_version"]
    assert manifest["networks"]["model"]["torchscript_max_abs_diff"] <= 1e-4
    assert "max |difference| to PyTorch torchscript" in text
    batch, model = _phantom_batch(full)
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    with torch.inference_mode():
        assert (scripted(batch) - model(batch)).abs().max().item() <= 1e-4
    # the folder exists whole; a second export into it is refused without --force
    code, _, err = run_cli(capsys, "export", "--model", str(root / "run"), "--out", str(out), "--format", "torchscript")
    assert code == 2 and "not empty" in err and len(err.strip().splitlines()) == 1


@needs_onnx
def test_onnx_export_and_onnxruntime_predict_match_pytorch(capsys, trained):
    root, full, _ = trained
    out, _, manifest = _export(capsys, root, "onnx")
    assert manifest["networks"]["model"]["onnx_max_abs_diff"] <= 1e-4
    import onnxruntime as ort

    batch, model = _phantom_batch(full)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": batch.numpy()})[0]  # a batch of another size than the export's
    with torch.inference_mode():
        assert np.abs(got - model(batch).numpy()).max() <= 1e-4
    # predict through onnxruntime equals predict through PyTorch (probabilities within 1e-4)
    for engine, model_dir in (("torch", root / "run"), ("onnxruntime", out)):
        code, _, err = run_cli(capsys, "predict", "--model", str(model_dir), "--input", str(full),
                               "--out", str(root / f"p_{engine}"), "--engine", engine, "--precision", "fp32")
        assert code == 0, err
    cases = sorted(p.name for p in full.iterdir() if p.is_dir())
    for case in cases:
        a = np.asanyarray(nib.load(root / "p_torch" / case / "prob.nii.gz").dataobj)
        b = np.asanyarray(nib.load(root / "p_onnxruntime" / case / "prob.nii.gz").dataobj)
        assert np.abs(a - b).max() <= 1e-4


@needs_onnx
def test_refusals_one_line_exit_2(capsys, trained, tmp_path):
    root, full, _ = trained
    src = root / "export_onnx"
    if not src.exists():
        _export(capsys, root, "onnx")

    def refused(model_dir, expect, *extra):
        out = tmp_path / f"p_{model_dir.name}"
        code, _, err = run_cli(capsys, "predict", "--model", str(model_dir), "--input", str(full), "--out", str(out),
                               "--engine", "onnxruntime", *extra)
        assert code == 2, err
        assert expect in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()

    old = tmp_path / "old_version"
    shutil.copytree(src, old)
    m = json.loads((old / "export.json").read_text())
    m["strokesynth_version"] = "0.0.9"
    (old / "export.json").write_text(json.dumps(m))
    refused(old, "written by strokesynth 0.0.9")

    wrong = tmp_path / "wrong_inputs"
    shutil.copytree(src, wrong)
    m = json.loads((wrong / "export.json").read_text())
    m["networks"]["model"]["inputs"][0]["shape"][1] += 1  # the config says one more channel than the file takes
    (wrong / "export.json").write_text(json.dumps(m))
    refused(wrong, "takes inputs")

    refused(root / "run", "no export.json")  # a run folder is not an export folder


def test_checkpoint_from_another_version_is_refused(capsys, trained, tmp_path):
    from strokesynth.engine.checkpoint import payload_digest

    root, full, _ = trained
    ck = torch.load(root / "run" / "fold_0" / "best.pt", weights_only=True)
    assert ck["strokesynth_version"]
    ck["strokesynth_version"] = "7.1.0"
    ck["sha256"] = payload_digest(ck)  # a sound checkpoint of another version, not a corrupt one
    torch.save(ck, tmp_path / "best.pt")
    code, _, err = run_cli(capsys, "predict", "--model", str(tmp_path / "best.pt"), "--input", str(full),
                           "--out", str(tmp_path / "p"))
    assert code == 2 and "written by strokesynth 7.1.0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=needs_onnx)])
def test_latent_and_two_input_generators_export_with_a_dynamic_batch(fmt, tmp_path):
    """The networks whose input is not one image: the 3D lesion GAN's generator (a latent) and
    SPADE (a label map and a latent); exported at batch 2, run at batches 1 and 3."""
    from types import SimpleNamespace

    import strokesynth.apps.export as ex
    from strokesynth.nets.lesion_gan import LesionGenerator
    from strokesynth.nets.spade import SPADEGenerator
    from strokesynth.systems.labelmap import LabelSPADE
    from strokesynth.systems.lesion_gan import LesionWGAN

    torch.manual_seed(0)
    system = SimpleNamespace(config=None)  # the systems' example inputs of their generators read no config
    for net, names, owner in ((LesionGenerator((8, 8, 4), channels=(8, 4), latent=16).eval(), ["z"], LesionWGAN),
                              (SPADEGenerator(5, channels=(8, 4), latent=16, hidden=8).eval(), ["seg", "z"], LabelSPADE)):
        inputs = owner.example_inputs(system, "generator", net)
        assert all(x.shape[0] == 2 for x in inputs) and len(inputs) == len(names)
        path = tmp_path / f"{type(net).__name__}.{fmt}"
        if fmt == "onnx":
            ex._export_onnx(net, inputs, names, path)
            run = ex.OnnxNetwork(path, [{"name": n, "shape": ["batch", *x.shape[1:]]} for n, x in zip(names, inputs, strict=True)])
        else:
            run = torch.jit.trace(net, inputs, check_trace=False)
        for b in (1, 3):
            xs = tuple(torch.cat([x, x])[:b] for x in inputs)
            with torch.inference_mode():
                assert (run(*xs) - net(*xs)).abs().max().item() <= 1e-4
