"""The README's two commands exist, and CI runs exactly the test command."""

from pathlib import Path

import yaml

from strokesynth.config import load_config, to_dict
from strokesynth.data.config import DataConfig

ROOT = Path(__file__).resolve().parents[1]


def _command_after(text: str, heading: str) -> str:
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(heading))
    return next(line.strip() for line in lines[i + 1 :] if line.startswith("    "))


def test_readme_commands_and_ci():
    readme = (ROOT / "README.md").read_text()
    main_cmd = _command_after(readme, "Set up a fresh clone")
    test_cmd = _command_after(readme, "Set up and run the tests")
    for cmd in (main_cmd, test_cmd):
        assert cmd.index("torch==2.13.0") < cmd.index("pip install -e")
    assert "strokesynth demo" in main_cmd and "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [line.strip() for line in ci]
    assert "5" in (ROOT / ".ci" / "run").read_text()


def test_shipped_data_config_is_the_default():
    cfg = load_config(DataConfig, ROOT / "configs" / "data.yaml")
    assert to_dict(cfg) == to_dict(DataConfig())
    assert yaml.safe_load((ROOT / "configs" / "data.yaml").read_text())["modalities"] == ["ct", "cbf", "cbv", "mtt", "tmax"]


def test_shipped_phantom_and_perfusion_configs_are_the_defaults():
    from strokesynth.perfusion import PerfusionConfig
    from strokesynth.phantom import PhantomConfig

    for cls, name in ((PhantomConfig, "phantom.yaml"), (PerfusionConfig, "perfusion.yaml")):
        assert to_dict(load_config(cls, ROOT / "configs" / name)) == to_dict(cls())


def test_readme_demo_numbers_are_those_of_the_saved_run():
    """The README's demo paragraph is generated from docs/demo/readme_numbers.json, which is copied
    from the demo run (runs/demo/readme_numbers.json) at the commit the README names."""
    import json
    import re

    from strokesynth.demo import demo_paragraph

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- demo-numbers -->(.*?)<!-- /demo-numbers -->", readme, re.S)
    assert block, "README lacks the <!-- demo-numbers --> block"
    numbers = json.loads((ROOT / "docs" / "demo" / "readme_numbers.json").read_text())
    assert " ".join(block.group(1).split()) == " ".join(demo_paragraph(numbers).split())
