"""The package order holds: a lower layer never imports a higher one (lazy imports included).

    errors -> _fs, resources -> registry -> config -> runs  ->  data  ->  io  ->  nets, losses, metrics, plots, perfusion
    ->  phantom  ->  engine  ->  systems  ->  recipes  ->  apps  ->  report  ->  demo, cli

Packages on one level do not import each other either, so there are no cycles between packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "strokesynth"
LAYERS = [
    ("errors",),
    ("_fs", "resources"),
    ("registry",),
    ("config",),
    ("runs",),
    ("data",),
    ("io",),
    ("nets", "losses", "metrics", "plots", "perfusion"),
    ("phantom",),
    ("engine",),
    ("systems",),
    ("recipes",),
    ("apps",),
    ("report",),
    ("demo", "cli", "__init__", "__main__"),
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """First component below ``strokesynth`` (a package or a top-level module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("strokesynth"):
            found.add(node.module)
            found.update(f"strokesynth.{a.name}" for a in node.names if node.module == "strokesynth" and a.name in LEVEL)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("strokesynth"))
    return found


def test_every_unit_has_a_layer():
    units = {p.stem if p.parent == SRC else p.parent.relative_to(SRC).parts[0] for p in SRC.rglob("*.py")}
    assert units <= set(LEVEL), sorted(units - set(LEVEL))


def test_no_import_goes_up_or_sideways():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        me = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for module in _imports(path):
            other = _unit(module)
            if other == "__init__" and module == "strokesynth":
                continue
            if other != me and LEVEL[other] >= LEVEL[me] and not (LEVEL[me] == LEVEL["demo"]):
                bad.append(f"{rel}: imports {module} ({other}, level {LEVEL[other]} >= {me}, level {LEVEL[me]})")
    assert not bad, "\n".join(bad)
