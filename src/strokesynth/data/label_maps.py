"""Anatomical label maps for label-map -> image synthesis: mapping tables, class maps, one-hot.

A user's segmentation (FreeSurfer ``aseg``, SynthSeg, the phantom's ``anatomy``) has its own
label ids. A :class:`LabelTable` maps them onto an ordered list of classes whose **last class is
always the lesion**; an id missing from the table is an error naming the file and the ids (a
silently dropped structure would teach the translation model a hole). Tables are YAML files::

    description: one line
    classes: [background, csf, ..., lesion]     # index = class id; lesion last
    map: {0: background, 2: wm_left, ...}        # source id -> class name

Shipped tables (``load_label_table(name)``): ``phantom`` (identity on the phantom's 12 classes),
``freesurfer_to_phantom`` (aseg/SynthSeg ids onto the phantom's classes) and ``freesurfer_aseg``
(a finer 28-class scheme on aseg ids). Any other path is read as a table file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from strokesynth.config import safe_yaml
from strokesynth.errors import ConfigError, DataError

TABLES = Path(__file__).with_name("label_tables")


@dataclass(frozen=True)
class LabelTable:
    """Source label ids -> class ids (see the module docstring).

    Attributes:
        name: the table's name or path.
        classes: class names in order; ``classes[-1]`` is the lesion.
        mapping: source id -> class id.
    """

    name: str
    classes: tuple[str, ...]
    mapping: dict[int, int]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def lesion(self) -> int:
        """Class id of the lesion (the last class)."""
        return len(self.classes) - 1

    def to_classes(self, labels: np.ndarray, where: str | os.PathLike = "label map") -> np.ndarray:
        """Class ids (uint8, same shape) of a source label map; unmapped ids raise :class:`DataError`."""
        arr = np.asarray(labels)
        if arr.dtype.kind == "f":
            if not np.allclose(arr, np.round(arr)):
                raise DataError(where, "label map holds non-integer values (is it an image, not a segmentation?)")
            arr = np.round(arr)
        arr = arr.astype(np.int64)
        ids = np.unique(arr)
        missing = [int(i) for i in ids if int(i) not in self.mapping]
        if missing:
            shown = ", ".join(str(i) for i in missing[:12]) + (" ..." if len(missing) > 12 else "")
            raise DataError(where, f"label ids {shown} are not in the mapping table {self.name!r}; add them to a "
                                   "copy of the table (map: {id: class}) and pass that file")
        lut = np.zeros(int(ids.max()) + 1 if ids.size else 1, np.uint8)
        for i in ids:
            lut[int(i)] = self.mapping[int(i)]
        if ids.size and ids.min() < 0:
            raise DataError(where, f"negative label id {int(ids.min())}")
        return lut[arr]


def load_label_table(name_or_path: str | os.PathLike) -> LabelTable:
    """A shipped table by name (``phantom``, ``freesurfer_to_phantom``, ``freesurfer_aseg``) or a YAML file."""
    path = Path(name_or_path)
    shipped = TABLES / f"{name_or_path}.yaml"
    if not path.is_file() and shipped.is_file():
        path = shipped
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in TABLES.glob("*.yaml")))
        raise ConfigError(name_or_path, f"no such label table (shipped: {names}; or a YAML file)")
    try:
        doc = safe_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(path, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list) or not isinstance(doc.get("map"), dict):
        raise ConfigError(path, "a label table needs 'classes' (a list) and 'map' (id: class)")
    classes = tuple(str(c) for c in doc["classes"])
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ConfigError(path, "'classes' must name at least two distinct classes")
    if classes[-1] != "lesion":
        raise ConfigError(path, f"the last class must be 'lesion', not {classes[-1]!r}")
    index = {c: i for i, c in enumerate(classes)}
    mapping: dict[int, int] = {}
    for k, v in doc["map"].items():
        try:
            key = int(k)
        except (TypeError, ValueError):
            raise ConfigError(path, f"map key {k!r} is not an integer label id") from None
        if str(v) not in index:
            raise ConfigError(path, f"map {key}: {v!r} is not one of the classes")
        mapping[key] = index[str(v)]
    return LabelTable(str(name_or_path), classes, mapping)


def one_hot(classes: np.ndarray | torch.Tensor, n_classes: int, dim: int = 0) -> torch.Tensor:
    """One-hot float32 tensor of a class map with the classes on axis ``dim``: ``(*S)`` -> ``(n_classes, *S)``
    for ``dim=0``, ``(B, *S)`` -> ``(B, n_classes, *S)`` for ``dim=1``."""
    t = torch.as_tensor(classes).long()
    return torch.nn.functional.one_hot(t, n_classes).float().movedim(-1, dim)
