"""The ``strokesynth`` command line.

User errors (bad files, bad configs, unwritable outputs) print one line,
``error: <where>: <problem>``, and exit with code 2; ``check`` exits with 1 when it finds
problems. Anything else is a bug: one line naming it and the file its traceback was saved to,
exit code 3.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from strokesynth import __version__
from strokesynth.errors import ConfigError, OutputError, StrokesynthError

LAYOUT_CHOICES = ["auto", "isles2018", "isles22", "isles24", "isles24-raw", "nnunet", "plain"]
WRITE_CHOICES = ["isles2018", "isles22", "isles24", "nnunet", "plain"]


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose choices are read from a registry when used (checking a value,
    ``--help`` of its own command), not when the CLI is imported: the network and loss registries
    import torch and MONAI, which ``strokesynth --help``, ``check`` or ``convert`` never need."""

    def __init__(self, names: Callable[[], list[str]], case_sensitive: bool = True) -> None:
        self._names = names
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._names())  # read anew: a registry may gain an entry after the CLI was imported

    @choices.setter
    def choices(self, value: tuple[str, ...]) -> None:
        self._names = lambda: list(value)


def _segmenter_names() -> list[str]:
    from strokesynth.nets.registry import NETWORKS

    return NETWORKS.names(role="segmenter")


def _loss_names() -> list[str]:
    from strokesynth.losses import LOSSES

    return LOSSES.names()


def _device(device: str | None) -> str | None:
    """A ``--device`` value, checked: a torch device name, and CUDA only where there is one."""
    if device is None:
        return None
    import torch

    from strokesynth.engine.config import check_device

    check_device(device, "--device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device", f"{device} requested but no CUDA device is available")
    return device


def _guard_run(folder: Path, *inputs: tuple[str, str | Path | None]) -> Path:
    """Declare the inputs a command took from its config and check its run folder against them
    and against the inputs given as options, before anything is written. Returns ``folder``."""
    from strokesynth._fs import check_output, protect_inputs

    protect_inputs(inputs)
    check_output(folder, "--out")
    return folder


def _no_overrides_on_resume(resume: bool, overrides: tuple[str, ...]) -> None:
    """A resumed run continues with the config saved in its folder: refuse ``--set`` with ``--resume``
    rather than ignore it."""
    if resume and overrides:
        raise ConfigError(f"--set {overrides[0]}", "a resumed run continues with the config saved in its folder; "
                                                   "--set cannot change it (start a new run, or --force)")


def _validated_as_options(cfg, options: dict[str, str]):  # noqa: ANN001, ANN202 - any config dataclass
    """``cfg`` with every type and range checked again (a command set some fields from its options);
    an error on a field an option set names that option (``options``: field -> ``--option``)."""
    from strokesynth.config import validated

    try:
        return validated(cfg)
    except ConfigError as exc:
        field = (exc.where or "").split("[")[0]
        raise ConfigError(options.get(field, exc.where), exc.problem) from None


def _run_settings(cfg, device: str, amp: str):  # noqa: ANN001, ANN202 - a model's config dataclass
    """A copy of a trained model's config that runs on ``device`` with autocast ``amp`` and caches
    nothing on disk (a training run's ``data.cache_dir`` lies inside the model's folder; new cases
    are read once each); the loaded config itself is never changed."""
    out = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, device=device, amp=amp))
    if getattr(out, "data", None) is not None and out.data.cache_dir:
        out = dataclasses.replace(out, data=dataclasses.replace(out.data, cache_dir=""))
    return out


def _split_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


class _Role:
    """Marks a path option as something a command reads (``input``) or writes (``output``)."""

    role = ""


class InputPath(_Role, click.Path):
    """A path the command reads: no output of the command may be it, hold it or lie inside it."""

    role = "input"


class OutputPath(_Role, click.Path):
    """A path the command writes (a folder or a file)."""

    role = "output"


class ConfigRef(_Role, click.ParamType):
    """A recipe's ``--config``: a shipped name or a YAML file (an input when it is a file)."""

    name = "config"
    role = "input"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        return value


IN_PATH = InputPath(path_type=Path)
OUT_PATH = OutputPath(path_type=Path)
CONFIG_REF = ConfigRef()


class GuardedCommand(click.Command):
    """A command whose outputs are checked against its inputs before it runs.

    Every value of an :class:`InputPath` (or a :class:`ConfigRef` naming a file) is declared with
    :func:`strokesynth._fs.protect_inputs`; every :class:`OutputPath` that is, holds or lies
    inside one of them is refused with one line before anything is written, and the writers of
    ``_fs`` and ``runs`` refuse it again for outputs a command derives later (``runs/<name>``).
    """

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        from strokesynth._fs import check_output, protect_inputs

        inputs, outputs = [], []
        for param in self.params:
            role = getattr(param.type, "role", "")
            value = ctx.params.get(param.name)
            if not role or value is None:
                continue
            label = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
            for item in value if isinstance(value, (tuple, list)) else [value]:
                if role == "input" and (not isinstance(param.type, ConfigRef) or Path(str(item)).is_file()):
                    inputs.append((label, item))
                elif role == "output":
                    outputs.append((label, item))
        protect_inputs(inputs)
        for label, item in outputs:
            check_output(item, label)
        return super().invoke(ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="strokesynth")
def cli() -> None:
    """strokesynth: infarct core in acute ischemic stroke through image synthesis.

    Data sets may be in the ISLES 2018 layout (case_N/SMIR.Brain.XX.O.<MOD>.<id>/),
    the ISLES'22 BIDS-like layout (rawdata/, derivatives/), the nnU-Net raw format
    (dataset.json, imagesTr/, labelsTr/) or plain folders (CASE/<modality>.nii.gz).
    """


cli.command_class = GuardedCommand


@cli.command()
@click.argument("dataset", type=IN_PATH)
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default="auto", show_default=True,
              help="Layout of DATASET; 'auto' detects it.")
@click.option("--quick", is_flag=True, help="Check headers only (shapes, affines, names); skip reading voxels.")
@click.option("--json", "json_out", type=OUT_PATH, default=None,
              help="Also write the report as JSON to this file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --json file.")
def check(dataset: Path, layout: str, quick: bool, json_out: Path | None, force: bool) -> None:
    """Integrity report of DATASET: cases, subjects, modalities, shapes, spacings, lesion volumes.

    Reads every file once (unless --quick) to find NaN/Inf, truncated data and non-binary
    masks. Exits with 1 when problems are found, 0 otherwise.
    """
    from strokesynth._fs import write_json_atomic
    from strokesynth.io.integrity import check_dataset, format_report

    if json_out is not None and json_out.exists() and not force:
        raise OutputError(json_out, "file exists (use --force to overwrite it)")
    report = check_dataset(dataset, layout=layout, deep=not quick)
    click.echo(format_report(report))
    if json_out is not None:
        write_json_atomic(json_out, report.to_json())
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("source", type=IN_PATH)
@click.argument("dest", type=OUT_PATH)
@click.option("--to", "to_layout", type=click.Choice(WRITE_CHOICES), required=True, help="Layout to write.")
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default="auto", show_default=True,
              help="Layout of SOURCE.")
@click.option("--modalities", default=None, metavar="KEYS",
              help="Comma-separated modality keys to write (nnU-Net default: the 3D images all cases share).")
@click.option("--folds", type=int, default=5, show_default=True,
              help="Subject-level folds written as nnU-Net's splits_final.json (--to nnunet).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the subject shuffle of --folds.")
@click.option("--force", is_flag=True, help="Replace DEST if it exists and is not empty.")
def convert(source: Path, dest: Path, to_layout: str, layout: str, modalities: str | None, folds: int, seed: int,
            force: bool) -> None:
    """Convert the data set SOURCE into DEST in another layout (e.g. to nnU-Net raw and back).

    DEST appears complete or not at all. Subjects, own-grid modalities and original case ids
    travel in DEST/strokesynth.json. For nnU-Net the channels default to the CTP inputs, every
    modality left out is named, and splits_final.json holds subject-level folds.
    """
    from strokesynth.io import open_cohort, write_cohort

    if folds < 1:
        raise ConfigError("--folds", f"must be at least 1, got {folds}")
    from strokesynth.data.arrays import check_labels

    cohort = open_cohort(source, layout=layout)
    check_labels(cohort.cases)  # a lesion mask is 0/1 in every layout; never copy or binarise another silently
    notes: list[str] = []
    out = write_cohort(cohort.cases, dest, layout=to_layout, force=force, modalities=_split_list(modalities),
                       folds=folds, seed=seed, notes=notes)
    for line in notes:
        click.echo(line)
    click.echo(f"wrote {len(cohort)} case(s) from {cohort.layout} to {to_layout} in {out}")


@cli.command()
@click.argument("dataset", type=IN_PATH)
@click.option("--out", type=OUT_PATH, required=True, help="JSON file to write the splits to.")
@click.option("--folds", type=int, default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the subject shuffle.")
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default="auto", show_default=True,
              help="Layout of DATASET; 'auto' detects it.")
@click.option("--force", is_flag=True, help="Overwrite an existing splits file.")
def split(dataset: Path, out: Path, folds: int, seed: int, layout: str, force: bool) -> None:
    """Subject-level K-fold splits of DATASET (no subject in two folds), saved as JSON."""
    from strokesynth.data.splits import subject_kfold
    from strokesynth.io import open_cohort

    if out.exists() and not force:
        raise OutputError(out, "file exists (use --force to overwrite it)")
    cohort = open_cohort(dataset, layout=layout)
    splits = subject_kfold(cohort.cases, folds, seed)
    splits.save(out)
    for f in splits.folds:
        click.echo(f"fold {f.index}: {len(f.val_cases)} case(s), {len(f.val_subjects)} subject(s) held out")
    click.echo(f"wrote {out}")


@cli.command()
@click.option("--out", type=OUT_PATH, required=True, help="Folder to write the data set to.")
@click.option("--subjects", type=int, default=6, show_default=True, help="Number of subjects.")
@click.option("--size", type=int, default=128, show_default=True, help="In-plane matrix size.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every random draw.")
@click.option("--to", "to_layout", type=click.Choice(WRITE_CHOICES), default="isles2018", show_default=True,
              help="Layout to write.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def example(out: Path, subjects: int, size: int, seed: int, to_layout: str, force: bool) -> None:
    """Write a small geometric toy cohort (CT, 4D CTP, perfusion maps, DWI, core mask).

    A quick stand-in with ISLES 2018 structure for trying the data layer; the physically
    grounded phantom is a separate command.
    """
    from strokesynth.data.toy import ToyConfig, toy_cohort
    from strokesynth.io import write_cohort

    if subjects < 1 or size < 8:
        raise ConfigError("example", "need at least 1 subject and a size of at least 8")
    cases = toy_cohort(ToyConfig(subjects=subjects, size=size, seed=seed))
    write_cohort(cases, out, layout=to_layout, force=force)
    click.echo(f"wrote {len(cases)} case(s) of {subjects} subject(s) to {out} ({to_layout})")


@cli.command()
@click.option("--out", type=OUT_PATH, default=Path("runs/demo"), show_default=True,
              help="Run folder.")
@click.option("--systems", default="all", show_default=True, metavar="NAME,...",
              help="Systems to run, comma-separated, or all: segmentation, ctmr, pseudo-dwi, labelmap, "
                   "pseudo-healthy and any registered recipe that declares a demo part.")
@click.option("--data", "data", type=IN_PATH, default=None,
              help="Your own data set folder (e.g. an ISLES'24 release) instead of the embedded phantom; every "
                   "system resamples its slices to a --size working grid and scores on each case's own grid.")
@click.option("--subjects", type=int, default=8, show_default=True,
              help="Stroke subjects of the phantom cohort (one healthy subject is added).")
@click.option("--size", type=int, default=None,
              help="In-plane matrix of the phantom (field of view kept at 230 mm), or the working grid of --data "
                   "[64; with --data 128].")
@click.option("--folds", type=int, default=3, show_default=True, help="Subject-level folds on the CTP cohort.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="The one seed of the run.")
@click.option("--dro", type=IN_PATH, default=None,
              help="OSIPI DSC DRO CSV to add to the perfusion-accuracy report.")
@click.option("--gan-epochs", type=int, default=None, help="CT-to-MR cGAN epochs per fold [demo budget: 6].")
@click.option("--seg-epochs", type=int, default=None, help="FCN / FCN-CGAN epochs per fold [demo budget: 14].")
@click.option("--set", "overrides", multiple=True, metavar="SYSTEM:KEY=VALUE",
              help="Override a system's recipe config, e.g. --set pseudo-dwi:system.run.epochs=20 (repeatable; "
                   "SYSTEM: ctmr, pseudo-dwi, labelmap, pseudo-healthy or another recipe's demo system).")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
def demo(out: Path, data: Path | None, systems: str, subjects: int, size: int | None, folds: int, seed: int,
         dro: Path | None, gan_epochs: int | None, seg_epochs: int | None, overrides: tuple[str, ...], force: bool
         ) -> None:
    """The main job on embedded data: the five systems on one digital stroke phantom, one report.

    Writes OUT/data (phantom, ISLES 2018 layout, ground truth in OUT/data/groundtruth),
    OUT/perfusion_accuracy.md/.json, OUT/check.json, one run folder per system (OUT/ctmr,
    OUT/pseudo_dwi, OUT/labelmap, OUT/pseudo_healthy, each with its config, checkpoints, per-case
    metrics and report.html), OUT/overview.txt/.json (every method on held-out data, paired
    against the CBF-threshold baseline or its reference), OUT/summary.json and OUT/report.html
    (self-contained, opens offline). 6 to 14 minutes on 2 CPU cores with every system, depending on the CPU.

    With --data DIR the same systems run on your own data set (an ISLES'24 release: acute CT
    maps and raw CTP as inputs, the follow-up DWI as the synthesis target, the final infarct as
    the label) at a --size working grid; OUT/data_sources.json and the report say which session
    every image came from. The label-map system runs only where the cases hold whole-brain label
    maps (anatomy); the perfusion-accuracy stage needs the phantom's ground truth and is left out.
    """
    from strokesynth.demo import DemoConfig, demo_systems, run_demo

    chosen = list(demo_systems()) if systems.strip() == "all" else [s.strip() for s in systems.split(",") if s.strip()]
    for name, value in (("--gan-epochs", gan_epochs), ("--seg-epochs", seg_epochs)):
        if value is not None and value < 1:
            raise ConfigError(name, "must be at least 1")
    per_system: dict[str, list[str]] = {}
    for item in overrides:
        system, sep, rest = item.partition(":")
        if not sep or "=" not in rest:
            raise ConfigError(item, "--set must look like SYSTEM:KEY=VALUE, e.g. pseudo-dwi:system.run.epochs=20")
        per_system.setdefault(system, []).append(rest)
    if dro is not None and not dro.is_file():
        raise ConfigError(dro, "OSIPI DRO file not found")
    if dro is not None and data is not None:
        raise ConfigError("--dro", "the perfusion-accuracy stage runs on the phantom only (not with --data)")
    size = size if size is not None else (128 if data is not None else 64)
    cfg = DemoConfig(systems=chosen, subjects=subjects, size=size, folds=folds, seed=seed, gan_epochs=gan_epochs or 0,
                     seg_epochs=seg_epochs or 0, overrides=per_system, data=str(data.resolve()) if data else "")
    cfg = _validated_as_options(cfg, {f: f"--{f.replace('_', '-')}" for f in ("subjects", "healthy", "size", "folds",
                                                                              "seed", "gan_epochs", "seg_epochs")})
    from strokesynth.config import freeze

    freeze(cfg)
    summary = run_demo(cfg, out, force=force, dro=dro, echo=click.echo)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in summary["seconds_by_stage"].items())
    peak = max(summary.get("peak_gb_by_stage", {}).values(), default=0.0)
    click.echo(f"done in {summary['seconds']:.0f} s ({stages}); peak memory {peak:.2f} GB")


def _phantom_isles24(cfg, out: Path, subjects: int | None, healthy: int | None, seed: int | None, size: int | None,
                     force: bool) -> None:
    """``phantom --layout isles24``: see :mod:`strokesynth.phantom.isles24`."""
    from strokesynth.config import freeze
    from strokesynth.phantom.config import estimated_peak_bytes
    from strokesynth.phantom.isles24 import Isles24Geometry, write_isles24_phantom
    from strokesynth.resources import require_memory

    for name, value in (("subjects", subjects), ("healthy", healthy), ("seed", seed)):
        if value is not None:
            cfg = dataclasses.replace(cfg, **{name: value})
    if cfg.subjects + cfg.healthy < 1:
        raise ConfigError("phantom", "need at least one subject (--subjects/--healthy)")
    if size is not None and not 32 <= size <= 1024 or (size or 512) % 2:
        raise ConfigError("--size", f"the ISLES'24 grid is an even number of pixels in 32-1024, got {size}")
    geometry = Isles24Geometry(size=size or 512)
    freeze(cfg)
    ctp_bytes = geometry.size ** 2 * geometry.slices * geometry.frames * 2
    require_memory(estimated_peak_bytes(geometry.simulation(cfg), False) + 3 * ctp_bytes, "--size",
                   f"an ISLES'24 phantom subject of {geometry.size}x{geometry.size}x{geometry.slices} px")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputError(out, "exists and is not empty (use --force to replace it)")
    start = time.time()
    write_isles24_phantom(cfg, out, geometry, force=force, progress=click.echo)
    click.echo(f"wrote {cfg.subjects + cfg.healthy} ISLES'24 subject(s) to {out} in {time.time() - start:.1f} s "
               f"(ground truth in {out / 'groundtruth'})")


@cli.command()
@click.option("--out", type=OUT_PATH, required=True, help="Folder to write the cohort to.")
@click.option("--subjects", type=int, default=None, help="Stroke subjects [config: 8].")
@click.option("--healthy", type=int, default=None, help="Extra subjects without a stroke [config: 0].")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of every random draw [config: 0].")
@click.option("--size", type=int, default=None, help="In-plane matrix; the field of view is kept [config: 256].")
@click.option("--config", "config_path", type=IN_PATH, default=None,
              help="Phantom YAML (see configs/phantom.yaml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set grid.slices=[8] (repeatable).")
@click.option("--no-figures", is_flag=True, help="Skip the per-case montages.")
@click.option("--mr-study", is_flag=True,
              help="Write whole-brain MR studies (DWI, ADC, FLAIR, T1, brain mask, anatomical labels; "
                   "128x128x32 at 1.5x1.5x5 mm by default) instead of CTP slabs.")
@click.option("--layout", type=click.Choice(["isles2018", "isles24", "plain", "isles22"]), default=None,
              help="CTP slabs: isles2018 [default] or isles24 (an ISLES'24 release: acute CTP with maps, NCCT, CTA, the "
                   "follow-up DWI/ADC, the final infarct and clinical tables, on a 512 x 512 x 80 grid at 2 mm with 40 "
                   "frames unless --size says otherwise); MR studies: plain [default] or isles22.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def phantom(out: Path, subjects: int | None, healthy: int | None, seed: int | None, size: int | None,
            config_path: Path | None, overrides: tuple[str, ...], no_figures: bool, mr_study: bool, layout: str | None,
            force: bool) -> None:
    """Write a digital stroke phantom cohort in the ISLES 2018 layout, with ground truth.

    Every scan has CT, the raw 4D CTP, CBF/CBV/MTT/Tmax computed from it, DWI, FLAIR and the
    core mask (OT); OUT/groundtruth/ holds the true maps, penumbra and anatomy labels, a
    montage per case and phantom.json (per-case facts and the cohort summary).

    With --layout isles24: one subject per stroke (or healthy) subject as an ISLES'24 release
    (derivatives/ in NCCT space, raw_data/ NCCT, phenotype/ tables), simulated at half the written
    resolution and interpolated onto it; the lesion is the final infarct (the core if recanalised,
    core and penumbra if not); OUT/groundtruth/ holds core, penumbra and final infarct per subject.

    With --mr-study: one whole-brain MR study per subject in the plain or ISLES'22 layout, with
    skull-stripped images (*_brain), the brain mask, the anatomical label map (anatomy; table in
    OUT/mr_phantom.json, lesion the last class) and the lesion mask; healthy subjects (--healthy)
    differ in ventricle size among other things.
    """
    from strokesynth.config import freeze, load_config
    from strokesynth.phantom import PhantomConfig, cohort_summary, generate_cohort, write_phantom

    cfg = load_config(PhantomConfig, config_path, overrides)
    if layout == "isles24" and not mr_study:
        _phantom_isles24(cfg, out, subjects, healthy, seed, size, force)
        return
    if layout is not None and (layout in ("isles2018", "isles24")) == mr_study:
        raise ConfigError("--layout", f"{layout} is a layout of {'CTP slabs' if mr_study else 'MR studies (--mr-study)'}")
    layout = layout or ("plain" if mr_study else "isles2018")
    for name, value in (("subjects", subjects), ("healthy", healthy), ("seed", seed)):
        if value is not None:
            setattr(cfg, name, value)
    which = "mr" if mr_study else "grid"
    before = getattr(cfg, which)
    if size is not None:  # the field of view is kept: the spacing follows once the size is checked
        cfg = dataclasses.replace(cfg, **{which: dataclasses.replace(before, size=size)})
    cfg = _validated_as_options(cfg, {"grid.size": "--size", "mr.size": "--size", "subjects": "--subjects",
                                      "healthy": "--healthy", "seed": "--seed"})
    if size is not None:
        from strokesynth.phantom.config import resized

        cfg = dataclasses.replace(cfg, **{which: resized(before, size)})
    if cfg.subjects + cfg.healthy < 1:
        raise ConfigError("phantom", "need at least one subject (--subjects/--healthy)")
    freeze(cfg)
    from strokesynth.phantom.config import estimated_peak_bytes
    from strokesynth.resources import require_memory

    grid = cfg.mr if mr_study else cfg.grid
    require_memory(estimated_peak_bytes(cfg, mr_study), "--size" if size is not None else "phantom",
                   f"a phantom scan of {grid.size}x{grid.size} px")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputError(out, "exists and is not empty (use --force to replace it)")
    start = time.time()
    if mr_study:
        from strokesynth.phantom import generate_mr_studies, mr_summary, write_mr_studies

        cases, infos = generate_mr_studies(cfg, progress=click.echo)
        write_mr_studies(cases, infos, out, cfg, layout=layout, force=force, figures=not no_figures)
        summary = mr_summary(infos, cfg.stroke.size_bounds_ml)
        click.echo(f"lesions by size {summary['lesions_by_size']}; ventricles ml {summary['ventricle_ml']}")
        click.echo(f"wrote {len(cases)} whole-brain MR studies ({summary['healthy']} healthy) to {out} ({layout}) "
                   f"in {time.time() - start:.1f} s (facts and label table in {out / 'mr_phantom.json'})")
        return
    scans = generate_cohort(cfg, progress=click.echo)
    write_phantom(scans, out, cfg, force=force, figures=not no_figures)
    summary = cohort_summary(scans)
    core = summary["core_ml"]
    click.echo(f"core volume ml: min {core['min']:.1f}, median {core['median']:.1f}, max {core['max']:.1f}; "
               f"slab slices {summary['slices']}; {summary['cases_without_core']} scan(s) without a core")
    click.echo(f"size groups, scans with a core: {summary['cases_by_size']}; the sized slab of each stroke "
               f"subject: {summary['subjects_by_size']} (target proportions {list(cfg.stroke.size_group_probs)})")
    click.echo(f"wrote {len(scans)} scan(s) of {cfg.subjects + cfg.healthy} subject(s) to {out} "
               f"in {time.time() - start:.1f} s (ground truth in {out / 'groundtruth'})")


@cli.command()
@click.argument("source", type=IN_PATH)
@click.option("--out", type=OUT_PATH, required=True, help="Folder for the maps.")
@click.option("--method", type=click.Choice(["osvd", "csvd", "ssvd", "tikhonov"]), default=None,
              help="Deconvolution method [config: osvd].")
@click.option("--config", "config_path", type=IN_PATH, default=None,
              help="Perfusion YAML (fields of PerfusionConfig).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (repeatable).")
@click.option("--aif-mask", type=IN_PATH, default=None,
              help="NIfTI mask of voxels to take the AIF from (default: automatic over the brain).")
@click.option("--frame-interval", type=float, default=None, metavar="SECONDS",
              help="Frame interval of a CTP whose JSON sidecar and header (pixdim[4]) do not give it.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def perfusion(source: Path, out: Path, method: str | None, config_path: Path | None, overrides: tuple[str, ...],
              aif_mask: Path | None, frame_interval: float | None, force: bool) -> None:
    """Compute CBF, CBV, MTT, Tmax and the temporal MIP from a raw 4D CTP.

    SOURCE is a 4D NIfTI (x, y, z, t in HU) or an ISLES 2018 case folder holding a CT_4DPWI. The frame
    timing comes from a JSON sidecar beside it (FrameTimesStart, seconds: uneven frames are resampled
    onto a uniform grid; or FrameInterval), else pixdim[4], else --frame-interval. OUT receives cbf/cbv/mtt/tmax/mip/mask.nii.gz (input affine),
    invalid.nii.gz (flags of voxels whose CBF 1, CBV 2, MTT 4 or Tmax 8 was negative (Tmax: by more
    than one frame) or NaN and is set to 0), cta_frames.nii.gz (the bolus window resampled to a few frames) and perfusion.json (AIF,
    bolus window, settings). Tmax is read at the onset of the residue (``--set tmax_rule=peak``
    for its argmax, as vendor software reports it; docs/perfusion.md compares the two).
    """
    from strokesynth.apps.perfusion import run_perfusion

    run_perfusion(source, out, method=method, config_path=config_path, overrides=list(overrides),
                  aif_mask=aif_mask, frame_interval=frame_interval, force=force, echo=click.echo)


@cli.command()
@click.option("--config", "config_path", type=IN_PATH, default=None,
              help="Training YAML (see configs/seg/).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (repeatable).")
@click.option("--out", type=OUT_PATH, default=None, help="Run folder [runs/<name>].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in OUT from each fold's last checkpoint.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [config: cpu].")
@click.option("--amp", type=click.Choice(["none", "bf16", "fp16"]), default=None, help="Autocast [config: none].")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
def train(config_path: Path | None, overrides: tuple[str, ...], out: Path | None, resume: bool, device: str | None,
          amp: str | None, force: bool) -> None:
    """Train a segmenter with subject-level cross-validation and evaluate each fold.

    Runs under torchrun too: `torchrun --nproc_per_node 2 -m strokesynth.cli train --config C`.
    Writes OUT/config.yaml, splits.json, fold_K/{best,last}.pt, fold_K/metrics.csv, predictions/
    and metrics/{folds,cases}.csv, metrics/summary.json; prints the metric table.
    """

    from strokesynth.config import freeze, load_config
    from strokesynth.recipes.cv import run_training
    from strokesynth.systems.segmenter import TrainConfig

    _no_overrides_on_resume(resume, overrides)
    if resume:
        if out is None:  # the default run folder of the config named
            out = Path("runs") / load_config(TrainConfig, config_path).name
        if not (out / "config.yaml").is_file():
            raise ConfigError(out, "no run to resume here (no config.yaml: the run stopped before it wrote one, "
                                   "or never started); run the same command without --resume")
    flags = ([f"run.device={device}"] if _device(device) is not None else []) + ([f"run.amp={amp}"] if amp else [])
    if resume and config_path is None:  # --device and --amp apply to a resumed run too, as overrides
        cfg = load_config(TrainConfig, out / "config.yaml", flags)
    else:
        cfg = load_config(TrainConfig, config_path, [*overrides, *flags])
    freeze(cfg)  # resolved once: the run never changes it
    if not cfg.data.dataset:
        raise ConfigError("data.dataset", "no data set given (set data.dataset=DIR)")
    folder = _guard_run(out or Path("runs") / cfg.name, ("data.dataset", cfg.data.dataset),
                        *(("data.derived", d) for d in cfg.data.derived))
    run_training(cfg, folder, force=force, resume=resume, echo=click.echo)


@cli.command()
@click.argument("run", type=click.Path(path_type=Path), required=False)
@click.option("--predictions", "prediction_dirs", multiple=True, type=IN_PATH,
              help="A folder of predicted masks made anywhere (nnU-Net CASE.nii.gz, its fold_K/validation/, "
                   "strokesynth CASE/mask.nii.gz); repeat to compare folders, paired.")
@click.option("--reference", type=IN_PATH, default=None,
              help="The data set holding the reference lesion masks (with --predictions).")
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default="auto", show_default=True,
              help="Layout of --reference.")
@click.option("--name", "names", multiple=True, help="A name per --predictions folder for the tables [folder names].")
@click.option("--out", type=OUT_PATH, default=None,
              help="Folder for cases.csv, evaluation.json and table.txt (with --predictions).")
@click.option("--force", is_flag=True, help="Replace --out if it exists and is not empty.")
def evaluate(run: Path | None, prediction_dirs: tuple[Path, ...], reference: Path | None, layout: str,
             names: tuple[str, ...], out: Path | None, force: bool) -> None:
    """Re-evaluate a training RUN, or score folders of predictions against a reference data set.

    `evaluate RUN`: each fold's best model on its held-out cases, with the baseline.
    `evaluate --predictions DIR [--predictions DIR2] --reference DATASET`: the same metrics and
    tables for masks made by any tool (grids and affines checked case by case), the CBF-threshold
    baseline where the reference has CBF, and paired comparisons between the folders.
    """
    if prediction_dirs or reference is not None:
        if run is not None:
            raise ConfigError("evaluate", "give either a RUN folder or --predictions with --reference, not both")
        if not prediction_dirs or reference is None:
            raise ConfigError("evaluate", "--predictions and --reference go together")
        from strokesynth.apps.score import score_predictions

        score_predictions(prediction_dirs, reference, out=out, layout=layout, names=names, force=force,
                          echo=click.echo)
        if out is not None:
            click.echo(f"wrote {out}")
        return
    if run is None:
        raise ConfigError("evaluate", "give a RUN folder, or --predictions DIR --reference DATASET")
    from strokesynth.recipes.cv import evaluate_run

    evaluate_run(run, echo=click.echo)


def _dicom_outputs(study, out: Path, dicom_out: Path | None, force: bool) -> None:
    """``predict --dicom-out``: the case's core (and Tmax > 6 s) as a DICOM SEG of its source CT series
    and its overlay as a secondary capture, written atomically to ``dicom_out``."""
    if dicom_out is None or study is None:
        return
    import nibabel as nib
    import numpy as np

    from strokesynth._fs import atomic_dir
    from strokesynth.errors import DataError
    from strokesynth.io.dicom_seg import write_secondary_capture, write_segmentation

    if "ct" not in study.sources:
        raise DataError(dicom_out, "the DICOM study has no non-contrast CT series for the SEG to reference")
    folder = out / study.case
    masks = {"core": np.asarray(nib.load(folder / "mask.nii.gz").dataobj) > 0}
    if (folder / "hypoperfusion.nii.gz").exists():
        masks["hypoperfusion"] = np.asarray(nib.load(folder / "hypoperfusion.nii.gz").dataobj) > 0
    with atomic_dir(dicom_out, force=force) as tmp:
        write_segmentation(study.sources["ct"], masks, tmp / f"{study.case}_seg.dcm", version=__version__)
        write_secondary_capture(study.sources["ct"][0], folder / "overlay.png", tmp / f"{study.case}_report.dcm",
                                version=__version__)
    click.echo(f"wrote the DICOM SEG ({', '.join(masks)}) and the report figure to {dicom_out}")


def _perfusion_config(method: str, frame_interval: float | None):
    from strokesynth.config import load_config
    from strokesynth.perfusion.maps import PerfusionConfig

    sets = [f"method={method}"] + ([] if frame_interval is None else [f"frame_interval_s={frame_interval}"])
    return load_config(PerfusionConfig, None, sets)


@cli.command()
@click.option("--model", "models", multiple=True, required=True, type=IN_PATH,
              help="A run folder, a pseudo-DWI recipe row folder (rows/<row>), a pseudo-healthy model folder or a fold's best.pt "
                   "(repeat to average several models).")
@click.option("--input", "source", required=True, type=IN_PATH,
              help="A data set folder, or one case folder of it.")
@click.option("--out", type=OUT_PATH, required=True, help="Output folder.")
@click.option("--threshold", type=float, default=None, help="Probability threshold [the model's, 0.5].")
@click.option("--perfusion-method", type=click.Choice(["osvd", "csvd", "ssvd", "tikhonov"]), default="osvd",
              show_default=True, help="Deconvolution for cases that bring a raw 4D CTP but not the maps.")
@click.option("--frame-interval", type=float, default=None, metavar="SECONDS",
              help="Frame interval of a raw CTP whose JSON sidecar and header (pixdim[4]) do not give it.")
@click.option("--tmax-threshold", type=float, default=6.0, show_default=True,
              help="Tmax (s) above which tissue counts as hypoperfused.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [the model's].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Inference precision (torch engine). auto: bf16 on a GPU with bf16 and on a CPU with AMX-BF16, "
                   "fp32 elsewhere (bf16 without matrix units is slower).")
@click.option("--engine", type=click.Choice(["torch", "onnxruntime"]), default="torch", show_default=True,
              help="onnxruntime: every --model is a folder written by `strokesynth export` (CPU, no autograd).")
@click.option("--resume", is_flag=True, help="Continue a batch that was killed or stopped by an error (finished "
              "cases are kept; same models, data and settings).")
@click.option("--dicom-out", type=OUT_PATH, default=None,
              help="With a DICOM --input: also write the core (and Tmax > 6 s) as a DICOM SEG of the source CT series "
                   "and the report's overlay as a secondary capture to this folder (needs highdicom).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def predict(models: tuple[Path, ...], source: Path, out: Path, threshold: float | None, perfusion_method: str,
            frame_interval: float | None, tmax_threshold: float, device: str | None, precision: str, engine: str, resume: bool,
            dicom_out: Path | None, force: bool) -> None:
    """Segment the core: mask and probability NIfTI (input affine), volumes in ml, overlay PNG,
    one HTML page per case, volumes.csv.

    A case needs the maps the model takes (CBF, CBV, MTT, Tmax), or its raw 4D CTP instead
    (a plain case folder with ct.nii.gz and ctp.nii.gz; the frame timing from a ctp.json sidecar,
    pixdim[4] or --frame-interval): the
    maps are then computed (--perfusion-method) and written under maps/. Where there is a Tmax map the
    Tmax > 6 s hypoperfusion, the mismatch volume and ratio are written too. The core is kept
    within the brain (from the CT, the perfusion analysis or the maps); a core marked outside it,
    or larger than half the brain, is flagged in the console, volumes.csv and the case page.

    A pseudo-DWI model needs the perfusion maps (or the raw CTP) and the raw 4D CTP, no DWI, and
    also writes the pseudo-DWI (dwi_pseudo.nii.gz). A pseudo-healthy model (a recipe's
    <contrast>/fold_k/<row> folder or its best.pt) writes pseudo_healthy.nii.gz and
    pathology_map.nii.gz instead.

    --input may also be a folder of DICOM files (one study): it is imported as by `strokesynth import`
    (the CTP's frame times from its Acquisition Times) into a temporary case first."""
    from contextlib import ExitStack

    from strokesynth.apps.predict import load_predictor, predict_cases
    from strokesynth.apps.predict_pseudo_healthy import predict_pseudo_healthy, pseudo_healthy_checkpoint
    from strokesynth.io.dicom import imported, looks_like_dicom
    from strokesynth.report.case import write_case_page

    study = None
    if dicom_out is not None:
        if not looks_like_dicom(source):
            raise ConfigError("--dicom-out", "needs --input to be a folder of DICOM files (the SEG references its images)")
        if dicom_out.exists() and any(dicom_out.iterdir()) and not force:
            raise OutputError(dicom_out, "exists and is not empty (use --force to replace it)")
    with ExitStack() as stack:
        if looks_like_dicom(source):  # a DICOM study: imported to a temporary plain case first
            source, study = stack.enter_context(imported(source))
            click.echo(f"imported the DICOM study to a temporary case ({study.case}: {', '.join(sorted(study.keys))})")
        device = _device(device)
        if not 0 < tmax_threshold <= 60:
            raise ConfigError("--tmax-threshold", f"a Tmax threshold is a number of seconds in (0, 60] (clinical: 6), "
                                                  f"got {tmax_threshold}")
        if engine == "onnxruntime":
            from strokesynth.apps.export import load_exported

            if device not in (None, "cpu"):
                raise ConfigError("--device", "--engine onnxruntime runs on the CPU; drop --device or use --engine torch")
            if precision == "bf16":
                raise ConfigError("--precision", "the ONNX export is fp32; bf16 needs --engine torch")
            loaded = [(model, _run_settings(cfg, "cpu", "none")) for model, cfg in map(load_exported, models)]
            if threshold is not None and not 0.0 < threshold < 1.0:
                raise ConfigError("--threshold", f"a probability threshold lies strictly between 0 and 1, got {threshold}")
            predict_cases(loaded, source, out, force=force, threshold=threshold,
                          perfusion=_perfusion_config(perfusion_method, frame_interval), tmax_threshold_s=tmax_threshold,
                          case_page=write_case_page, resume=resume, echo=click.echo)
            _dicom_outputs(study, out, dicom_out, force)
            click.echo(f"wrote {out}")
            return
        healthy = [pseudo_healthy_checkpoint(m) for m in models]
        if any(healthy):
            if len(models) > 1 or threshold is not None:
                raise ConfigError("--model", "a pseudo-healthy model is applied alone and without --threshold")
            predict_pseudo_healthy(healthy[0], source, out, force=force, echo=click.echo)
            click.echo(f"wrote {out}")
            return
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise ConfigError("--threshold", f"a probability threshold lies strictly between 0 and 1, got {threshold}")
        from strokesynth.engine.config import inference_amp

        loaded = []
        for model, cfg in map(load_predictor, models):
            on = device or cfg.run.device
            loaded.append((model.to(on) if device is not None else model,
                           _run_settings(cfg, on, inference_amp(on, precision))))
        click.echo(f"precision: {'bf16' if loaded[0][1].run.amp == 'bf16' else 'fp32'} on {loaded[0][1].run.device}"
                   + (" (auto)" if precision == "auto" else ""))
        predict_cases(loaded, source, out, force=force, threshold=threshold,
                      perfusion=_perfusion_config(perfusion_method, frame_interval), tmax_threshold_s=tmax_threshold,
                      case_page=write_case_page, resume=resume, echo=click.echo)
        _dicom_outputs(study, out, dicom_out, force)
        click.echo(f"wrote {out}")


@cli.command()
@click.option("--model", required=True, type=IN_PATH,
              help="A run folder (its first fold's kept model), a recipe row folder or a checkpoint (best.pt).")
@click.option("--out", type=OUT_PATH, required=True, help="Folder for the exported networks.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["onnx", "torchscript"]),
              help="Repeat for several [both].")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def export(model: Path, out: Path, formats: tuple[str, ...], force: bool) -> None:
    """Export every inference network of a trained system to ONNX and TorchScript.

    Writes <network>.onnx, <network>.torchscript.pt and export.json (toolkit version, system,
    config, inputs, and the largest difference to PyTorch measured on an example input; an export
    off by more than 1e-4 x max(1, largest output) is refused). `predict --engine onnxruntime --model OUT` runs it. ONNX
    needs the optional packages onnx, onnxscript and onnxruntime (pip install -e ".[onnx]")."""
    from strokesynth.apps.export import FORMATS, export_model

    manifest = export_model(model, out, formats=formats or FORMATS, force=force, echo=click.echo)
    for name, entry in manifest["networks"].items():
        diffs = ", ".join(f"{f} {entry[f + '_max_abs_diff']:.1e}" for f in ("onnx", "torchscript")
                          if f + "_max_abs_diff" in entry)
        click.echo(f"{name}: max |difference| to PyTorch {diffs}")
    for name, why in manifest["skipped"].items():
        click.echo(f"{name}: not exported ({why})")
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("runs", nargs=-1, type=IN_PATH)
@click.option("--out", type=OUT_PATH, required=True, help="Folder for the ensemble's metrics.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def ensemble(runs: tuple[Path, ...], out: Path, force: bool) -> None:
    """Evaluate the average of several cross-validation runs (same data and splits) fold by fold.

    Fold k's best model of every run predicts fold k's held-out cases; their probabilities are
    averaged (the paper's final submission: 5 focal + 5 CE PSPNets). To apply an ensemble to new
    data, give `predict` several --model options.
    """
    from strokesynth.recipes.cv import evaluate_ensemble

    evaluate_ensemble(list(runs), out, force=force, echo=click.echo)


class RecipeGroup(click.Group):
    """``strokesynth recipe``: ``list`` and one command per registered recipe, built from its
    :class:`~strokesynth.recipes.recipe.Recipe` when first asked for (the registry is read then,
    not when the CLI is imported)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from strokesynth.recipes.registry import RECIPES

        return [*super().list_commands(ctx), *RECIPES.names()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from strokesynth.recipes.registry import RECIPES

        own = super().get_command(ctx, cmd_name)
        if own is not None or cmd_name not in RECIPES:
            return own
        return recipe_command(RECIPES.get(cmd_name))


def _option_key(option) -> str:  # noqa: ANN001 - a RecipeOption
    """The callback keyword of a recipe's own option (``--real-case`` -> ``x_real_case``)."""
    return "x_" + option.flag.lstrip("-").replace("-", "_")


def _recipe_option(option) -> click.Option:  # noqa: ANN001 - a RecipeOption
    """The click option of a :class:`~strokesynth.recipes.recipe.RecipeOption`."""
    from strokesynth.recipes.recipe import resolve

    name = _option_key(option)
    if option.kind == "flag":
        return click.Option([option.flag, name], is_flag=True, help=option.help)
    kind = {"path": IN_PATH, "text": click.STRING}.get(option.kind)
    if option.kind == "choice":
        kind = LazyChoice(lambda: list(resolve(option.choices)()))
    return click.Option([option.flag, name], type=kind, multiple=option.multiple, default=None,
                        metavar=option.metavar, help=option.help)


def recipe_command(r) -> click.Command:  # noqa: ANN001 - a Recipe
    """The ``strokesynth recipe NAME`` command of recipe ``r``.

    Every option becomes a ``key=value`` override, in this order: the recipe's own options, then
    ``--data``, then ``--device``, then ``--set`` (last wins); the config is built and validated
    once from them. The run folder and every data input the config names are checked against
    each other before anything is written."""
    shipped = " or ".join(r.configs)
    params: list[click.Parameter] = [
        click.Option(["--config", "config_path"], type=CONFIG_REF, default=r.configs[0], show_default=True,
                     help=f"Experiment YAML, or a shipped name: {shipped}."),
    ]
    if r.data_help:
        params.append(click.Option(["--data", "dataset"], type=IN_PATH, default=None, help=r.data_help))
    params += [_recipe_option(o) for o in r.options]
    params += [
        click.Option(["--set", "overrides"], multiple=True, metavar="KEY=VALUE",
                     help="Override a config value, e.g. --set name=mine (repeatable)."),
        click.Option(["--out"], type=OUT_PATH, default=None, help="Run folder [runs/<name>]."),
        click.Option(["--device"], default=None, help="cpu, cuda or cuda:N for every model [config: cpu]."),
    ]
    if r.resumable:
        params.append(click.Option(["--resume"], is_flag=True,
                                   help="Continue an interrupted run in OUT (finished parts are kept)."))
    params.append(click.Option(["--force"], is_flag=True, help="Replace an existing run folder."))

    def callback(config_path: str, overrides: tuple[str, ...], out: Path | None, device: str | None,
                 force: bool, resume: bool = False, dataset: Path | None = None, **own: object) -> None:
        from strokesynth.recipes.recipe import resolve

        _no_overrides_on_resume(resume, overrides)
        extra: list[str] = []
        for option in r.options:
            value = own[_option_key(option)]
            if value not in (None, False, ()):
                extra += option.to_overrides(value)
        if dataset is not None:
            extra.append(f"dataset={dataset.resolve() if r.data_absolute else dataset}")
        if _device(device) is not None:
            extra += [f"{f}={device}" for f in r.device_fields]
        from strokesynth.config import freeze

        cfg = freeze(r.config(config_path, [*extra, *overrides]))  # resolved once: the run never changes it
        data = getattr(cfg, "dataset", "")
        if r.data_required and not resume and not Path(str(data)).is_dir():
            raise ConfigError("dataset", f"data set folder {str(data)!r} not found (give --data DIR)")
        folder = _guard_run(out or Path("runs") / cfg.name, *r.input_values(cfg))
        resolve(r.run)(cfg, folder, force=force, resume=resume, echo=click.echo)
        if r.report is not None:
            click.echo(f"report: {resolve(r.report)(folder)}")

    return GuardedCommand(r.name, params=params, callback=callback, help=r.help, short_help=r.summary)


@cli.group(cls=RecipeGroup)
def recipe() -> None:
    """Experiments that reproduce a paper's table (`strokesynth recipe list` names them)."""


recipe.command_class = GuardedCommand


@recipe.command("list")
def recipe_list() -> None:
    """The registered recipes, one line each."""
    from strokesynth.recipes.registry import RECIPES

    for r in RECIPES.all():
        click.echo(f"{r.name:<22} {r.summary}")


@cli.command("import")
@click.argument("source", type=IN_PATH)
@click.option("--out", type=OUT_PATH, required=True, help="Data set folder to write (plain layout).")
@click.option("--case", "case_name", default=None, help="Case name [the patient ID and study date].")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def import_dicom(source: Path, out: Path, case_name: str | None, force: bool) -> None:
    """Import one DICOM study (a folder tree of CT files, any names) as a plain-layout case.

    Series are grouped by Series Instance UID and recognised by their tags: the CTP (several time
    points per slice position, ordered by Temporal Position Identifier or Acquisition Time), perfusion
    maps (CBF/CBV/MTT/Tmax in the description), the CTA (a contrast agent) and the non-contrast CT.
    Slices are sorted by position; the affine comes from Image Position/Orientation (oblique stacks
    included). Each image gets a JSON sidecar; the CTP's holds its frame times (FrameTimesStart), which
    perfusion and predict use (uneven frames are resampled). Needs pydicom (pip install 'strokesynth[dicom]').
    """
    import re as _re

    from strokesynth._fs import atomic_dir
    from strokesynth.io.dicom import case_name as dicom_case_name
    from strokesynth.io.dicom import import_study, scan

    if out.exists() and any(out.iterdir()) and not force:
        raise OutputError(out, "exists and is not empty (use --force to replace it)")
    scanned = scan(source)  # the headers, read once
    if case_name is None:
        case_name = dicom_case_name(scanned[0])
    elif not _re.fullmatch(r"[A-Za-z0-9._-]+", case_name):
        raise ConfigError("--case", f"{case_name!r} cannot be a folder name (use letters, digits, . _ -)")
    with atomic_dir(out, force=force) as tmp:
        result = import_study(source, tmp / case_name, scanned)
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote case {case_name} ({', '.join(sorted(result.keys))}) to {out}")


@cli.command("synth-db")
@click.option("--healthy", "healthy", type=IN_PATH, required=True,
              help="Data set folder of healthy cases with an anatomy label map each.")
@click.option("--lesion-gan", "gan", type=IN_PATH, required=True,
              help="A lesion_wgan checkpoint (e.g. RUN/lesion_gan/best.pt).")
@click.option("--translator", type=IN_PATH, required=True,
              help="A label map -> DWI checkpoint (e.g. RUN/translation/pix2pix/best.pt).")
@click.option("-n", "n", type=int, default=100, show_default=True, help="Synthetic subjects to write.")
@click.option("--out", type=OUT_PATH, required=True, help="Destination data set folder.")
@click.option("--layout", type=click.Choice(["plain", "isles22"]), default="plain", show_default=True,
              help="Layout of the written data set.")
@click.option("--table", default="", help="Label table of the healthy maps [the translation model's].")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the lesion draws and the synthesis.")
@click.option("--retries", type=int, default=50, show_default=True, help="Lesion draws per subject before giving up.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty OUT.")
def synth_db(healthy: Path, gan: Path, translator: Path, n: int, out: Path, layout: str, table: str, seed: int,
             retries: int, device: str, force: bool) -> None:
    """Build a synthetic annotated stroke database (Platscher et al.): GAN lesions injected into healthy
    label maps, translated to DWI. Resumable (run the same command again), complete or nothing."""
    from strokesynth.io import open_cohort
    from strokesynth.recipes.synthetic_db import build_synthetic_db

    _device(device)
    for path in (gan, translator):
        if not path.is_file():
            raise ConfigError(path, "checkpoint not found")
    cases = open_cohort(healthy, require=["anatomy"]).cases
    build_synthetic_db(cases, gan, translator, n, out, seed=seed, layout=layout, table=table, retries=retries,
                       force=force, device=device, echo=click.echo)


def _recipes_with(part: str) -> list[str]:
    """Names of the registered recipes that declare ``part`` (``describe``, ``report``)."""
    from strokesynth.recipes.registry import RECIPES

    return [r.name for r in RECIPES.all() if getattr(r, part) is not None]


@cli.command()
@click.argument("run", type=click.Path(path_type=Path))
def report(run: Path) -> None:
    """(Re)write RUN/report.html of a finished demo or recipe run from its files.

    Nothing is trained or predicted: the tables come from the run's saved metrics, the figures
    from its data set and predictions, so a report made with a newer strokesynth shows the same
    numbers. The recipe is recognised by the files its finished run holds."""
    from strokesynth.recipes.recipe import resolve
    from strokesynth.recipes.registry import RECIPES

    if not run.is_dir():
        raise ConfigError(run, "run folder not found")
    if (run / "summary.json").is_file() and (run / "overview.json").is_file():
        from strokesynth.demo import write_demo_report as write
    else:
        found = [r for r in RECIPES.all() if r.report is not None and r.finished(run)]
        if not found:
            known = "; ".join(f"{r.name}: {' + '.join(r.markers)}" for r in RECIPES.all() if r.report is not None)
            raise ConfigError(run, f"not a finished demo (summary.json + overview.json) or recipe run ({known})")
        write = resolve(found[0].report)
    click.echo(f"report: {write(run)}")


@cli.command()
@click.option("--config", "config_path", type=CONFIG_REF, default="paper", show_default=True,
              help="An experiment YAML or shipped name (paper, tiny) of the recipe.")
@click.option("--recipe", "recipe_name", type=LazyChoice(lambda: sorted({*_recipes_with("describe"),
                                                                         *_recipes_with("fidelity")})),
              default="ctmr-cgan", show_default=True, help="Which recipe's networks to describe.")
@click.option("--size", type=int, default=None, help="Input side in pixels for the FLOP count [the config's].")
def describe(config_path: str, recipe_name: str, size: int | None) -> None:
    """Print the networks of an experiment (layers, parameter counts and GFLOPs per slice) and,
    with the paper config, its paper-fidelity table: what the paper specifies beside what the
    paper and tiny configs run, each difference with its reason."""
    from strokesynth.recipes.recipe import resolve
    from strokesynth.recipes.registry import RECIPES

    if size is not None and (size < 32 or size % 32):
        raise ConfigError("--size", f"give a multiple of 32 of at least 32 pixels, got {size}")
    recipe = RECIPES.get(recipe_name)
    parts = []
    if recipe.describe is not None:
        parts.append(resolve(recipe.describe)(config_path, size))
    if recipe.fidelity is not None and str(config_path) == "paper":
        from strokesynth.recipes.fidelity import describe_fidelity

        parts.append(describe_fidelity(recipe_name))
    if not parts:
        raise ConfigError("--config", f"{recipe_name} describes its paper config only (--config paper)")
    click.echo("\n\n".join(parts))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the CLI and turns user errors into one line and exit code 2."""
    from strokesynth.runs import finish_runs, keep_interrupted, undo_replacements

    start = time.time()
    finish_runs()  # each command is one transaction: what came before in this process is settled
    try:
        rv = _run(argv)
    except (KeyboardInterrupt, click.exceptions.Abort):
        for path, backup in keep_interrupted():  # resumable: nothing is removed
            click.echo(f"unfinished run kept in {path} (continue it with --resume)"
                       + (f"; the result it was replacing is in {backup}" if backup else ""), err=True)
        _report_error(start)
        return
    except BaseException as exc:
        if not (isinstance(exc, SystemExit) and not exc.code):
            for path in undo_replacements():  # --force: the old result comes back when the new one failed
                click.echo(f"kept the previous result in {path}", err=True)
        _report_error(start)
        return
    finish_runs()
    if isinstance(rv, int) and rv:
        sys.exit(rv)


def _run(argv: list[str] | None):
    """The command itself; the locks on its outputs are released when it ends, however it ends.

    Python warnings raised meanwhile are held back: printed as one ``warning:`` line each when
    the command succeeds, dropped when it ends in an error (whose one line says what is wrong)."""
    import warnings

    from strokesynth._fs import release_inputs, release_outputs

    with warnings.catch_warnings(record=True) as caught:  # a library's warning never precedes an error line
        try:
            rv = cli.main(args=argv, prog_name="strokesynth", standalone_mode=False)
        finally:
            release_outputs()
            release_inputs()
    shown: set[str] = set()
    for w in caught:  # the command succeeded: each warning once, on one line, after its output
        text = " ".join(f"{w.category.__name__}: {w.message}".split())[:300]
        if text not in shown:
            shown.add(text)
            click.echo(f"warning: {text}", err=True)
    return rv


def _report_error(start: float) -> None:
    """Turn the exception being handled into the CLI's one line and exit code (bugs re-raise)."""
    try:
        raise
    except StrokesynthError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # a bad option or argument: one line, like every other user error
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(f"interrupted after {time.time() - start:.0f} s", err=True)
        sys.exit(130)
    except OSError as exc:
        where = exc.filename or "strokesynth"
        click.echo(f"error: {where}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    except MemoryError:
        click.echo("error: out of memory: the data or the settings need more memory than this machine has "
                   "(a smaller data.size, batch_size or fewer workers)", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - a bug: one line and the traceback in a file, never a screen of frames
        saved = _save_traceback()
        text = " ".join(str(exc).split())[:300]
        click.echo(f"error: unexpected {type(exc).__name__}: {text} (a bug in strokesynth {__version__}; "
                   f"traceback saved to {saved}; please report it)", err=True)
        sys.exit(3)


def _save_traceback() -> str:
    """Write the traceback being handled to a file in the temporary folder; returns its path."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix=f"strokesynth-traceback-{time.strftime('%Y%m%d-%H%M%S')}-",
                                    suffix=".txt")
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(f"strokesynth {__version__}\nargv: {sys.argv}\n\n{traceback.format_exc()}")
        return path
    except OSError:
        return "(could not be saved)"


if __name__ == "__main__":
    main()
