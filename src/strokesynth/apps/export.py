"""Export a trained system's networks to ONNX and TorchScript, and run them without PyTorch's autograd.

``export_model(model, out)`` rebuilds the system of a run folder or checkpoint, and writes for
every inference network (``<name>.onnx``, ``<name>.torchscript.pt``) plus ``export.json``: the
toolkit version, the system's registry name and resolved config (so ``predict`` prepares a case
exactly as in training), each network's inputs and the largest difference to PyTorch measured
at export time on the network's example input. An export whose largest difference exceeds
``tolerance`` (1e-4, fp32) times max(1, the largest output magnitude) is refused (a trained
generator's logits on a random input reach tens to hundreds, where fp32 rounding alone is about
1e-4); the folder appears whole or not at all.

Inputs: batch is dynamic, the spatial size is the training size (``predict`` brings every case to
it), so one export serves every case. Networks used only in training (discriminators, critics:
``ModuleList`` without a forward) are listed as skipped. pix2pix's test-time dropout is switched
off in the export (the exported generator is deterministic).

``load_exported(folder)`` gives the same ``(model, config)`` pair as ``load_predictor`` with every
network replaced by an :class:`OnnxNetwork` (onnxruntime session), so ``predict --engine
onnxruntime`` runs the toolkit's own pre- and post-processing around ONNX Runtime.

ONNX needs the optional packages ``onnx``, ``onnxscript`` and ``onnxruntime`` (``pip install -e
".[onnx]"``); TorchScript needs only torch.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from strokesynth import __version__
from strokesynth._fs import atomic_dir
from strokesynth.config import from_dict, safe_yaml, to_dict
from strokesynth.engine.checkpoint import check_version, load_system
from strokesynth.engine.system import SYSTEMS
from strokesynth.errors import ConfigError, DataError
from strokesynth.nets.pix2pix import set_test_dropout

FORMATS = ("onnx", "torchscript")
EXPORT_FORMAT = "strokesynth-export/1"
TOLERANCE = 1e-4


def _outputs(net: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    with torch.inference_mode():
        out = net(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.float().numpy() for o in outs]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def _export_onnx(net: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str], path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, inputs, dynamo=True, input_names=names,
                                    dynamic_shapes=tuple({0: batch} for _ in inputs), verbose=False)
    program.save(str(path))


def _onnx_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _resolve_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    folds = sorted(path.glob("fold_*/best.pt"))
    if not folds:
        raise DataError(path, "no fold_*/best.pt in this folder (is it a finished run?)")
    cfg_file = path / "config.yaml"
    if cfg_file.exists():  # the run's first fold to run, as `predict` takes it

        run = (safe_yaml(cfg_file.read_text()) or {}).get("run", {})
        chosen = path / f"fold_{(run.get('folds_to_run') or [0])[0]}" / "best.pt"
        if chosen.exists():
            return chosen
    return folds[0]


def export_model(model: str | os.PathLike, out: str | os.PathLike, *, formats: tuple[str, ...] = FORMATS,
                 tolerance: float = TOLERANCE, force: bool = False, echo=print) -> dict[str, Any]:
    """Export every inference network of a run folder or checkpoint into the folder ``out``.

    Returns the manifest written as ``out/export.json``.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError("format", f"unknown export format(s) {bad} (choose from {', '.join(FORMATS)})")
    if "onnx" in formats:
        missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if not _importable(m)]
        if missing:
            raise ConfigError("format", f"ONNX export needs {', '.join(missing)} (pip install -e \".[onnx]\"), "
                                        "or use --format torchscript")
    source = Path(model)
    if not source.exists():
        raise DataError(source, "no such run folder or checkpoint file")
    ckpt = _resolve_checkpoint(source)
    system = load_system(ckpt)
    manifest: dict[str, Any] = {"format": EXPORT_FORMAT, "strokesynth_version": __version__, "source": str(ckpt),
                                "system": system.name, "config": to_dict(system.config), "tolerance": tolerance,
                                "torch": torch.__version__, "networks": {}, "skipped": {}}
    with atomic_dir(out, force=force) as tmp:
        for name, net in system.networks.items():
            net = set_test_dropout(net.eval(), False)
            inputs = system.example_inputs(name, net)
            if inputs is None:
                manifest["skipped"][name] = "training only (no forward of its own)"
                continue
            names = ["seg", "z"] if len(inputs) == 2 else (["z"] if inputs[0].dim() == 2 else ["image"])
            ref = _outputs(net, inputs)
            entry: dict[str, Any] = {"inputs": [{"name": n, "shape": ["batch", *x.shape[1:]]}
                                                for n, x in zip(names, inputs, strict=True)],
                                     "outputs": [["batch", *o.shape[1:]] for o in ref]}
            if "onnx" in formats:
                echo(f"  {name}: ONNX ...")
                path = tmp / f"{name}.onnx"
                _export_onnx(net, inputs, names, path)
                sess = _onnx_session(path)
                got = sess.run(None, {n: x.numpy() for n, x in zip(names, inputs, strict=True)})
                entry["onnx"] = path.name
                entry["onnx_max_abs_diff"] = _max_diff(ref, got)
            if "torchscript" in formats:
                echo(f"  {name}: TorchScript ...")
                path = tmp / f"{name}.torchscript.pt"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(net, inputs, check_trace=False)
                traced.save(str(path))
                got = _outputs(torch.jit.load(str(path)), inputs)
                entry["torchscript"] = path.name
                entry["torchscript_max_abs_diff"] = _max_diff(ref, got)
            # fp32 outputs far from 1 (logits of a random input) carry rounding relative to their size
            scale = max(1.0, max(float(np.abs(o).max()) for o in ref))
            entry["output_scale"] = scale
            for fmt in formats:
                diff = entry[f"{fmt}_max_abs_diff"]
                if not diff <= tolerance * scale:
                    raise DataError(ckpt, f"the {fmt} export of {name!r} differs from PyTorch by {diff:.2e} "
                                          f"(> {tolerance:.0e} x max(1, largest output {scale:.3g})); nothing written")
            manifest["networks"][name] = entry
        if not manifest["networks"]:
            raise DataError(ckpt, f"the {system.name} system has no network with a forward of its own to export")
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class OnnxNetwork(nn.Module):
    """An exported network run by ONNX Runtime, standing in for the PyTorch one.

    ``forward`` takes and returns CPU float32 tensors of the shapes in ``export.json`` (no
    autograd: outputs come from numpy).
    """

    def __init__(self, path: Path, inputs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.path = path
        self.session = _onnx_session(path)
        got = [(i.name, list(i.shape)) for i in self.session.get_inputs()]
        want = [(i["name"], list(i["shape"])) for i in inputs]
        if len(got) != len(want) or any(g[0] != w[0] or g[1][1:] != w[1][1:] for g, w in zip(got, want, strict=False)):
            raise DataError(path, f"takes inputs {got}, but export.json describes {want} (a file from another export?)")
        self.names = [g[0] for g in got]
        self.shapes = [w[1] for w in want]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        for x, shape in zip(inputs, self.shapes, strict=True):
            if list(x.shape[1:]) != list(shape[1:]):
                raise DataError(self.path, f"expects inputs of shape {['batch', *shape[1:]]}, got {list(x.shape)}")
        feed = {n: x.detach().float().cpu().numpy() for n, x in zip(self.names, inputs, strict=True)}
        outs = [torch.from_numpy(o) for o in self.session.run(None, feed)]
        return outs[0] if len(outs) == 1 else tuple(outs)


def load_exported(folder: str | os.PathLike):
    """The system of an export folder with its networks run by ONNX Runtime; ``(model, config)``
    as :func:`strokesynth.apps.predict.load_predictor` gives them."""
    folder = Path(folder)
    manifest_path = folder / "export.json"
    if not manifest_path.is_file():
        raise DataError(folder, "no export.json here (make one with `strokesynth export`)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(manifest_path, f"unreadable ({type(exc).__name__})") from None
    if manifest.get("format") != EXPORT_FORMAT:
        raise DataError(manifest_path, f"is not a {EXPORT_FORMAT} manifest (format {manifest.get('format')!r})")
    check_version(manifest_path, manifest.get("strokesynth_version"))
    if not _importable("onnxruntime"):
        raise ConfigError("engine", "--engine onnxruntime needs onnxruntime (pip install -e \".[onnx]\")")
    cls = SYSTEMS.get(manifest["system"])
    system = cls.restore(from_dict(cls.config_class, manifest["config"], str(manifest_path)))
    for name, entry in manifest["networks"].items():
        if "onnx" not in entry:
            raise DataError(manifest_path, f"network {name!r} was exported without ONNX (--format onnx)")
        path = folder / entry["onnx"]
        if not path.is_file():
            raise DataError(path, "missing (the export folder is incomplete)")
        system.networks[name] = OnnxNetwork(path, entry["inputs"])
    if not system.predicts:
        raise DataError(manifest_path, f"holds a {system.name} system, which does not segment new cases")
    return system.predictor(), system.config
