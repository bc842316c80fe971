"""A recipe as one registered object: everything the command line, ``describe``, ``report`` and
the demo need to know about a paper's experiment.

A recipe is declared in a light module (no torch, no MONAI: ``strokesynth recipe list`` and
``--help`` read it) and names its heavy parts by reference, ``"package.module:function"``, or
by the callable itself; a reference is imported when it is first called::

    RECIPES.add(Recipe(
        name="my-paper", summary="Doe et al.: ...", help="...",
        load_config="mypkg.recipe:load_config", run="mypkg.recipe:run",
        report="mypkg.report:write_report", markers=("table.json",)))

The generic ``strokesynth recipe NAME`` command then reads ``--config`` (a shipped name or a
YAML file), ``--data``, the recipe's own :class:`RecipeOption` s, ``--set``, ``--out``,
``--device``, ``--resume`` and ``--force``; every one of them becomes a ``key=value`` override,
applied *before* the config is built and validated, so the config a recipe runs is the config
that was checked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A callable, or where to import it from: ``"package.module:attribute"``.
Ref = Callable[..., Any] | str


def resolve(ref: Ref) -> Callable[..., Any]:
    """The callable a :data:`Ref` names (imported on first use)."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class RecipeOption:
    """A recipe's own command-line option, turned into config overrides.

    Attributes:
        flag: the option, e.g. ``"--tables"``.
        help: its help line.
        to_overrides: the value given -> ``["key=value", ...]``; not called when the option is
            left out (or a flag is not set).
        kind: ``"text"``, ``"path"`` (an input: checked against every output), ``"flag"`` or
            ``"choice"`` (``choices`` lists the names, read when first needed).
        metavar: the placeholder shown in ``--help``.
        multiple: the option may be repeated (``to_overrides`` receives a tuple).
        choices: for ``kind="choice"``: a :data:`Ref` returning the allowed names.
    """

    flag: str
    help: str
    to_overrides: Callable[[Any], list[str]]
    kind: str = "text"
    metavar: str | None = None
    multiple: bool = False
    choices: Ref | None = None


@dataclass(frozen=True)
class DemoPart:
    """How ``strokesynth demo`` runs a recipe on its phantom cohort.

    Attributes:
        key: the system's name in ``demo --systems`` (e.g. ``pseudo-dwi``).
        order: its place in the demo (the demo runs and reports systems by ``order``).
        heading: its heading in the console and the report (``"3. Pseudo-DWI ..."``).
        folder: its run folder inside the demo's folder.
        budget: overrides of the recipe's ``tiny`` config that fit the demo's CPU budget.
        cohort: a :data:`Ref` ``(DemoCohort) -> ["key=value", ...]``: the overrides that point
            the recipe at the demo's phantom cohort, folds and seed.
        short: the short name of its part of the demo report (``"3. Pseudo-DWI + SLNet"``).
    """

    key: str
    order: int
    heading: str
    folder: str
    budget: tuple[str, ...] = ()
    cohort: Ref | None = None
    short: str = ""


@dataclass(frozen=True)
class DemoCohort:
    """What the demo shares with every recipe it runs: the data set (absolute path: the phantom
    written in ``OUT/data``, or the user's own folder of ``demo --data``), the in-plane matrix
    (px), the number of subject-level folds and the one seed. ``pixel_mm`` is 0 for the phantom
    (written at ``size``, used as stored); for a user's data it is the pixel size (mm) at which
    the median field of view fills ``size`` pixels: every recipe then resamples its slices to
    that working grid instead of cropping them."""

    data: str
    size: int
    folds: int
    seed: int
    pixel_mm: float = 0.0


@dataclass(frozen=True)
class Recipe:
    """One paper's experiment, registered by name.

    Attributes:
        name: the command, ``strokesynth recipe NAME``.
        summary: one line for ``recipe list``.
        help: the command's help text (first line: the paper).
        load_config: :data:`Ref` ``(name_or_yaml, overrides) -> config``; the config has a
            ``name`` (the default run folder ``runs/<name>``) and the fields in ``inputs``.
        run: :data:`Ref` ``(config, folder, *, force, resume, echo) -> summary``.
        configs: the shipped config names (``tiny`` is the default).
        report: :data:`Ref` ``(folder) -> Path`` writing ``folder/report.html`` from files alone.
        sections: :data:`Ref` ``(folder) -> [(anchor, heading, html), ...]``: its report's sections,
            which the demo report shows too.
        describe: :data:`Ref` ``(config, size) -> str``: its networks, parameters and FLOPs.
        fidelity: the module of its paper-fidelity table (``SPECS``, ``PAPER``, ``configs()``;
            see :mod:`strokesynth.recipes.fidelity`), or ``None``.
        overview: :data:`Ref` ``(folder) -> [row, ...]``: its rows of the demo's overview table
            (see :mod:`strokesynth.report.overview`).
        markers: files (or folders) that a finished run folder of this recipe holds, all of
            them; ``strokesynth report`` recognises the recipe by them.
        data_help: help of ``--data`` (``""``: the recipe takes no ``--data``).
        data_required: ``--data`` (or the config's ``dataset``) must name an existing folder.
        data_absolute: ``--data`` is written into the config as an absolute path.
        device_fields: the config fields ``--device`` sets (``system.run.device``, ...).
        inputs: the config fields that name data the run reads (never written by it).
        options: its own options, turned into overrides.
        resumable: ``run`` continues an interrupted run with ``resume=True`` (``--resume``).
        demo: how the demo runs it, or ``None`` when it is not part of the demo.
    """

    name: str
    summary: str
    help: str
    load_config: Ref
    run: Ref
    configs: tuple[str, ...] = ("tiny", "paper")
    report: Ref | None = None
    sections: Ref | None = None
    describe: Ref | None = None
    fidelity: str | None = None
    overview: Ref | None = None
    markers: tuple[str, ...] = ()
    data_help: str = "Data set folder [config: dataset]."
    data_required: bool = True
    data_absolute: bool = False
    device_fields: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ("dataset",)
    options: tuple[RecipeOption, ...] = ()
    resumable: bool = True
    demo: DemoPart | None = None

    def config(self, name_or_path: str | Path | None, overrides: Sequence[str] = ()) -> Any:
        """The resolved, validated config (see :attr:`load_config`)."""
        return resolve(self.load_config)(name_or_path, list(overrides))

    def finished(self, folder: Path) -> bool:
        """Whether ``folder`` holds a finished run of this recipe (every marker present)."""
        return bool(self.markers) and all((folder / m).exists() for m in self.markers)

    def input_values(self, cfg: Any) -> list[tuple[str, str]]:
        """``(field, value)`` of every data input the config names (empty values left out)."""
        out = []
        for dotted in self.inputs:
            value: Any = cfg
            for part in dotted.split("."):
                value = getattr(value, part, None)
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if v:
                    out.append((dotted, str(v)))
        return out


@dataclass
class RecipeRegistry:
    """The registered recipes by name; the shipped ones are declared in
    :mod:`strokesynth.recipes.catalog`, imported on the first lookup."""

    provider: str | None = "strokesynth.recipes.catalog"
    _recipes: dict[str, Recipe] = field(default_factory=dict)

    def _load(self) -> None:
        if self.provider is not None:
            provider, self.provider = self.provider, None
            importlib.import_module(provider)

    def add(self, recipe: Recipe) -> Recipe:
        """Register ``recipe``; a second, different recipe of the same name (or the same demo key)
        is refused."""
        old = self._recipes.get(recipe.name)
        if old is not None and old is not recipe:
            raise ValueError(f"recipe {recipe.name!r} is registered twice")
        if recipe.demo is not None:
            clash = [r.name for r in self._recipes.values()
                     if r is not old and r.demo is not None and r.demo.key == recipe.demo.key]
            if clash:
                raise ValueError(f"demo system {recipe.demo.key!r} is already {clash[0]!r}")
        self._recipes[recipe.name] = recipe
        return recipe

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests that register a recipe of their own)."""
        self._recipes.pop(name, None)

    def get(self, name: str) -> Recipe:
        """The recipe called ``name``; a one-line error naming the choices otherwise."""
        from strokesynth.errors import ConfigError

        self._load()
        if name not in self._recipes:
            raise ConfigError("recipe", f"unknown recipe {name!r} (choose from {', '.join(self.names())})")
        return self._recipes[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._recipes)

    def all(self) -> list[Recipe]:
        """Every registered recipe, sorted by name."""
        return [self._recipes[n] for n in self.names()]

    def demo_parts(self) -> list[tuple[Recipe, DemoPart]]:
        """The recipes the demo runs, in demo order."""
        self._load()
        parts = [(r, r.demo) for r in self._recipes.values() if r.demo is not None]
        return sorted(parts, key=lambda rp: (rp[1].order, rp[1].key))

    def by_demo_key(self, key: str) -> Recipe | None:
        """The recipe the demo runs as system ``key``."""
        return next((r for r, d in self.demo_parts() if d.key == key), None)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._recipes
