"""The command line starts at once: importing it, ``--help`` and the data commands that need no
network (``check``, ``convert``, ``split``) load neither torch nor MONAI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "monai", "torchvision")


def _modules_after(code: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter and say which heavy packages it left imported."""
    probe = code + f"\nimport json, sys\nprint('\\n' + json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(*args: str) -> str:
    return ("from strokesynth.cli import main\n"
            f"try:\n    main({list(args)!r})\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n")


def test_import_of_the_cli_loads_neither_torch_nor_monai():
    assert _modules_after("import strokesynth.cli") == dict.fromkeys(HEAVY, False)


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["train", "--help"], ["recipe", "--help"],
                                  ["recipe", "list"], ["describe", "--help"]])
def test_help_and_lists_load_neither_torch_nor_monai(args):
    assert _modules_after(_cli(*args)) == dict.fromkeys(HEAVY, False)


def test_check_convert_split_load_neither_torch_nor_monai(tmp_path):
    from strokesynth.data.toy import ToyConfig, toy_cohort
    from strokesynth.io import write_cohort

    data = tmp_path / "data"
    write_cohort(toy_cohort(ToyConfig(subjects=2, size=16, seed=0)), data, layout="isles2018")
    code = "\n".join([
        _cli("check", str(data), "--quick"),
        _cli("convert", str(data), str(tmp_path / "nn"), "--to", "nnunet", "--folds", "2"),
        _cli("split", str(data), "--out", str(tmp_path / "splits.json"), "--folds", "2"),
    ])
    assert _modules_after(code) == dict.fromkeys(HEAVY, False)
    assert (tmp_path / "splits.json").is_file() and (tmp_path / "nn" / "dataset.json").is_file()


def test_a_registry_choice_is_still_checked_and_listed():
    from click.testing import CliRunner

    from strokesynth.cli import cli

    result = CliRunner().invoke(cli, ["recipe", "seg-comparison", "--data", ".", "--out", "x", "--arch", "nope"])
    assert result.exit_code == 2 and "pspnet" in result.output and "nope" in result.output


def test_a_lazy_choice_sees_entries_registered_after_its_first_use():
    from strokesynth.cli import LazyChoice

    names = ["ctmr-cgan"]
    choice = LazyChoice(lambda: list(names))
    assert choice.choices == ("ctmr-cgan",)
    names.append("toy-sixth")  # a recipe registered after the CLI first listed the choices
    assert choice.convert("toy-sixth", None, None) == "toy-sixth"
