"""nnU-Net v2 raw layout, read and export.

::

    ROOT/                         (e.g. Dataset501_Stroke)
      dataset.json                {"channel_names": {"0": "CT", "1": "CBF", ...},
                                   "labels": {"background": 0, "lesion": 1},
                                   "numTraining": N, "file_ending": ".nii.gz"}
      imagesTr/CASE_0000.nii.gz   one file per channel, 4-digit channel index
      labelsTr/CASE.nii.gz
      imagesTs/CASE_0000.nii.gz   (optional, no labels)

Channel names map to modality keys case-insensitively (``CT``/``NCCT`` -> ``ct``,
``T1w`` -> ``t1``...). nnU-Net needs every channel on one grid and in 3D, so 4D series and
own-grid modalities cannot be exported. The default channels are the CTP inputs (CT, CBF, CBV,
MTT, Tmax) where the data has them: a DWI beside them is the target of the synthesis systems,
not an input, and becomes a channel only when asked for. Every left-out modality is reported.
``splits_final.json`` carries strokesynth's subject-level folds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from strokesynth._fs import write_json_atomic
from strokesynth.data.case import LABEL_KEY, Case
from strokesynth.data.modalities import get_modality
from strokesynth.errors import DataError, OutputError
from strokesynth.io.case_files import case_from_files, safe_name, write_case_volumes
from strokesynth.io.dataset_meta import DatasetMeta
from strokesynth.io.problems import ProblemLog

NAME = "nnunet"

_ALIASES = {"ncct": "ct", "t1w": "t1", "dwi_b1000": "dwi", "b1000": "dwi", "seg": LABEL_KEY}


def channel_key(name: str, where: Path) -> str:
    """Map an nnU-Net channel name to a modality key, or raise naming ``where``."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    spec = get_modality(key, str(where))
    if spec.kind != "image" or spec.ndim != 3:
        raise DataError(where, f"channel {name!r} is not a 3D image modality")
    return key


def detect(root: Path) -> bool:
    """True if ``root`` has ``dataset.json`` and ``imagesTr``."""
    return (root / "dataset.json").is_file() and (root / "imagesTr").is_dir()


def _read_json(root: Path) -> tuple[dict[int, str], str]:
    path = root / "dataset.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        names = spec["channel_names"] if "channel_names" in spec else spec["modality"]
        channels = {int(k): str(v) for k, v in dict(names).items()}
        ending = str(spec.get("file_ending", ".nii.gz"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    except (KeyError, TypeError, ValueError):
        raise DataError(path, "needs a 'channel_names' mapping like {\"0\": \"CT\"}") from None
    if not channels or sorted(channels) != list(range(len(channels))):
        raise DataError(path, "channel indices must be 0..N-1")
    if ending not in (".nii.gz", ".nii"):
        raise DataError(path, f"file_ending {ending!r} is not NIfTI (.nii.gz or .nii)")
    return {i: channel_key(n, path) for i, n in channels.items()}, ending


def read(root: Path, meta: DatasetMeta, log: ProblemLog) -> list[Case]:
    """Read ``imagesTr``/``labelsTr`` (and ``imagesTs``) as cases."""
    channels, ending = _read_json(root)
    keys = list(channels.values())
    if len(set(keys)) != len(keys):
        log.add(root / "dataset.json", "two channels map to the same modality")
        return []
    pattern = re.compile(rf"^(?P<case>.+)_(?P<ch>\d{{4}}){re.escape(ending)}$")
    cases = []
    for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", None)):
        folder = root / images
        if not folder.is_dir():
            continue
        found: dict[str, dict[int, Path]] = {}
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            match = pattern.match(path.name)
            if not match:
                log.add(path, f"name does not follow CASE_XXXX{ending}")
                continue
            found.setdefault(match["case"], {})[int(match["ch"])] = path
        for layout_id, by_channel in found.items():
            with log.guard():
                extra = sorted(set(by_channel) - set(channels))
                if extra:
                    log.add(by_channel[extra[0]], f"channel {extra[0]:04d} is not in dataset.json's channel_names")
                    continue
                missing = sorted(set(channels) - set(by_channel))
                if missing:
                    names = ", ".join(f"{i:04d} ({channels[i]})" for i in missing)
                    log.add(folder / f"{layout_id}_{missing[0]:04d}{ending}", f"missing channel {names}")
                    continue
                files = {channels[i]: p for i, p in by_channel.items()}
                if labels is not None:
                    label = root / labels / f"{layout_id}{ending}"
                    if not label.exists():
                        log.add(label, "label file missing for a training case")
                        continue
                    files[LABEL_KEY] = label
                case_id = meta.case_id(layout_id)
                cases.append(
                    case_from_files(
                        case_id,
                        meta.subject(case_id),
                        files,
                        where=folder / f"{layout_id}_XXXX{ending}",
                        meta={"layout": NAME, "split": "train" if labels else "test"},
                    )
                )
    return cases


#: The CTP inputs a core segmenter sees; the default channels of an export from CTP data.
CTP_INPUTS = ("ct", "cbf", "cbv", "mtt", "tmax")


def default_modalities(cases: list[Case]) -> list[str]:
    """Default channels: the CTP inputs (:data:`CTP_INPUTS`) that every case has on its grid.

    Data without CTP maps (an MR data set such as ISLES'22) get every 3D image all cases share
    on the case grid. DWI, FLAIR or any other target next to CTP maps is a channel only when
    asked for (``--modalities``): it is what a CTP segmenter must not see.
    """
    common: set[str] | None = None
    for case in cases:
        keys = {k for k in case.image_keys if get_modality(k).ndim == 3 and k not in case.own_grid}
        common = keys if common is None else common & keys
    common = common or set()
    ctp = [k for k in CTP_INPUTS if k in common]
    return ctp if ctp else sorted(common)


def dropped_modalities(cases: list[Case], keys: list[str]) -> dict[str, str]:
    """Modality -> why it is not a channel, for every modality some case has and ``keys`` leaves out."""
    out: dict[str, str] = {}
    present = sorted(set().union(*(set(c.image_keys) for c in cases)))
    for key in present:
        if key in keys:
            continue
        spec = get_modality(key)
        holders = [c for c in cases if key in c]
        if spec.ndim != 3:
            out[key] = f"{spec.ndim}D series (nnU-Net channels are 3D)"
        elif any(key in c.own_grid for c in holders):
            out[key] = "on its own grid (nnU-Net needs every channel on one grid)"
        elif len(holders) < len(cases):
            out[key] = f"only {len(holders)} of {len(cases)} cases have it"
        else:
            out[key] = "not asked for (add it with --modalities)"
    return out


def nnunet_splits(cases: list[Case], folds: int, seed: int) -> list[dict[str, list[str]]]:
    """nnU-Net v2 ``splits_final.json`` content from strokesynth's subject-level folds.

    Only labelled cases train in nnU-Net, so only they are split; identifiers are the exported
    file names' case part. No subject is on both sides of a fold.
    """
    from strokesynth.data.splits import subject_kfold

    labelled = [c for c in cases if c.label is not None]
    splits = subject_kfold(labelled, folds, seed)
    ids = {c.id: safe_name(c.id) for c in labelled}
    return [{"train": sorted(ids[i] for i in f.train_cases), "val": sorted(ids[i] for i in f.val_cases)}
            for f in splits.folds]


def _check_label(case: Case) -> None:
    values = np.unique(np.asarray(case.label.array))
    bad = [v for v in values.tolist() if v not in (0, 1)]
    if bad:
        raise OutputError(case.label.path or case.where or case.id,
                          f"lesion mask holds values {bad[:5]} besides 0 and 1; dataset.json declares only "
                          "background 0 and lesion 1 (binarise the mask first)")


def write(cases: list[Case], root: Path, meta: DatasetMeta, modalities: list[str] | None = None, *,
          name: str | None = None, folds: int = 5, seed: int = 0, notes: list[str] | None = None) -> None:
    """Export ``cases`` (channels = ``modalities``, default :func:`default_modalities`).

    Writes ``dataset.json`` (``name``: the destination folder's name), ``imagesTr``/``labelsTr``
    (``imagesTs`` for unlabelled cases) and ``splits_final.json``: strokesynth's subject-level
    folds (``folds``, ``seed``) in nnU-Net's format, to copy into
    ``nnUNet_preprocessed/<dataset>/`` after ``nnUNetv2_plan_and_preprocess`` so nnU-Net never
    puts two scans of one subject on both sides of a fold. ``notes`` receives one line per
    chosen channel list and per left-out modality.
    """
    keys = list(modalities) if modalities else default_modalities(cases)
    if not keys:
        raise OutputError(root, "no 3D image modality common to all cases to export")
    for key in keys:
        spec = get_modality(key, "--modalities")
        if spec.kind != "image" or spec.ndim != 3:
            raise OutputError(root, f"modality {key!r} cannot be an nnU-Net channel (3D images only)")
    n_train = 0
    for case in cases:
        case_name = safe_name(case.id)
        case.require(keys)
        on_own = sorted(set(keys) & case.own_grid)
        if on_own:
            raise OutputError(case.where or case.id, f"{', '.join(on_own)} is on its own grid; nnU-Net needs one grid")
        has_label = case.label is not None
        if has_label:
            _check_label(case)
        folder = "imagesTr" if has_label else "imagesTs"
        targets = {k: root / folder / f"{case_name}_{i:04d}.nii.gz" for i, k in enumerate(keys)}
        if has_label:
            targets[LABEL_KEY] = root / "labelsTr" / f"{case_name}.nii.gz"
            n_train += 1
        write_case_volumes(case, targets)
        meta.subjects[case.id] = case.subject
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        root / "dataset.json",
        {
            "channel_names": {str(i): k for i, k in enumerate(keys)},
            "labels": {"background": 0, "lesion": 1},
            "numTraining": n_train,
            "file_ending": ".nii.gz",
            "name": name or root.name,
            "description": "exported by strokesynth",
        },
    )
    log = notes if notes is not None else []
    log.append("channels: " + ", ".join(f"{i:04d} {k}" for i, k in enumerate(keys)))
    for key, why in dropped_modalities(cases, keys).items():
        log.append(f"left out {key}: {why}")
    n_subjects = len({c.subject for c in cases if c.label is not None})
    if folds >= 2 and n_subjects >= folds:
        write_json_atomic(root / "splits_final.json", nnunet_splits(cases, folds, seed))
        log.append(f"splits_final.json: {folds} subject-level folds (seed {seed}); copy it to "
                   f"nnUNet_preprocessed/{name or root.name}/ after plan_and_preprocess")
    else:
        log.append(f"no splits_final.json: {n_subjects} labelled subject(s) for {folds} folds")
