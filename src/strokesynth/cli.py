"""The ``strokesynth`` command line.

User errors (bad files, bad configs, unwritable outputs) print one line,
``error: <where>: <problem>``, and exit with code 2; ``check`` exits with 1 when it finds
problems. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from strokesynth import __version__
from strokesynth.errors import ConfigError, OutputError, StrokesynthError

LAYOUT_CHOICES = ["auto", "isles2018", "isles22", "nnunet", "plain"]
WRITE_CHOICES = ["isles2018", "isles22", "nnunet", "plain"]


def _split_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="strokesynth")
def cli() -> None:
    """strokesynth: infarct core in acute ischemic stroke through image synthesis.

    Data sets may be in the ISLES 2018 layout (case_N/SMIR.Brain.XX.O.<MOD>.<id>/),
    the ISLES'22 BIDS-like layout (rawdata/, derivatives/), the nnU-Net raw format
    (dataset.json, imagesTr/, labelsTr/) or plain folders (CASE/<modality>.nii.gz).
    """


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default="auto", show_default=True,
              help="Layout of DATASET; 'auto' detects it.")
@click.option("--quick", is_flag=True, help="Check headers only (shapes, affines, names); skip reading voxels.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
def check(dataset: Path, layout: str, quick: bool, json_out: Path | None) -> None:
    """Integrity report of DATASET: cases, subjects, modalities, shapes, spacings, lesion volumes.

    Reads every file once (unless --quick) to find NaN/Inf, truncated data and non-binary
    masks. Exits with 1 when problems are found, 0 otherwise.
    """
    from strokesynth.io.atomic import write_json_atomic
    from strokesynth.io.integrity import check_dataset, format_report

    report = check_dataset(dataset, layout=layout, deep=not quick)
    click.echo(format_report(report))
    if json_out is not None:
        write_json_atomic(json_out, report.to_json())
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--to", "to_layout", type=click.Choice(WRITE_CHOICES), required=True, help="Layout to write.")
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default="auto", show_default=True,
              help="Layout of SOURCE.")
@click.option("--modalities", default=None, metavar="KEYS",
              help="Comma-separated modality keys to write (nnU-Net default: the 3D images all cases share).")
@click.option("--force", is_flag=True, help="Replace DEST if it exists and is not empty.")
def convert(source: Path, dest: Path, to_layout: str, layout: str, modalities: str | None, force: bool) -> None:
    """Convert the data set SOURCE into DEST in another layout (e.g. to nnU-Net raw and back).

    DEST appears complete or not at all. Subjects, own-grid modalities and original case ids
    travel in DEST/strokesynth.json.
    """
    from strokesynth.io import open_cohort, write_cohort

    cohort = open_cohort(source, layout=layout)
    out = write_cohort(cohort.cases, dest, layout=to_layout, force=force, modalities=_split_list(modalities))
    click.echo(f"wrote {len(cohort)} case(s) from {cohort.layout} to {to_layout} in {out}")


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSON file to write the splits to.")
@click.option("--folds", type=int, default=5, show_default=True, help="Number of folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subject shuffle.")
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
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the data set to.")
@click.option("--subjects", type=int, default=6, show_default=True, help="Number of subjects.")
@click.option("--size", type=int, default=128, show_default=True, help="In-plane matrix size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
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
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="Run folder.")
@click.option("--subjects", type=int, default=8, show_default=True, help="Subjects in the example cohort.")
@click.option("--size", type=int, default=128, show_default=True, help="In-plane matrix of the example cohort.")
@click.option("--seed", type=int, default=0, show_default=True, help="The one seed of the run.")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
def demo(out: Path, subjects: int, size: int, seed: int, force: bool) -> None:
    """The main job on embedded data: build a cohort, check it, split it, load it for training.

    Writes OUT/data (ISLES 2018 layout), OUT/check.json, OUT/splits.json, OUT/config.yaml,
    OUT/figures/sample.png and OUT/summary.json.
    """
    from strokesynth.demo import run_demo

    summary = run_demo(out, subjects=subjects, size=size, seed=seed, force=force, echo=click.echo)
    click.echo(json.dumps(summary, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the CLI and turns user errors into one line and exit code 2."""
    start = time.time()
    try:
        rv = cli.main(args=argv, prog_name="strokesynth", standalone_mode=False)
    except StrokesynthError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
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
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
