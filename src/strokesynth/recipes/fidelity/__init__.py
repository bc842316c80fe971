"""Paper fidelity: for each system, the paper's specification beside what its ``paper`` and
``tiny`` configs run, generated from the code.

Each system's module (``fidelity/<system>.py``, named by its recipe's ``fidelity`` field) lists
:class:`Spec` rows and loads its two configs. A row's config cells are computed from the loaded configs (values, layer lists,
parameter counts of the networks the configs build), so the table cannot drift from the code.
A row without a ``deviation`` claims that the ``paper`` config *is* the paper: its computed cell
must equal the paper's cell, character for character (:func:`check`, run by the tests). A row
with a ``deviation`` states how the config differs and why.

    strokesynth describe --recipe pseudo-dwi --config paper     # prints the table
    render("pseudo-dwi")                                        # the Markdown of the docs page
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def systems() -> list[str]:
    """The recipes with a fidelity table (those that name a ``fidelity`` module)."""
    from strokesynth.recipes.registry import RECIPES

    return [r.name for r in RECIPES.all() if r.fidelity is not None]


#: the docs page of each system's table (between ``<!-- fidelity -->`` and ``<!-- /fidelity -->``)
DOCS = {"seg-comparison": "segmentation.md", "ctmr-cgan": "ctmr.md", "pseudo-dwi": "pseudo_dwi.md",
        "labelmap-augmentation": "labelmap.md", "pseudo-healthy": "pseudo_healthy.md"}
BEGIN, END = "<!-- fidelity -->", "<!-- /fidelity -->"


@dataclass(frozen=True)
class Spec:
    """One row: what the paper specifies and what a config runs.

    Attributes:
        spec: the specification and the paper's section (``"SLNet parameters (Sec. 2.4)"``).
        paper: the paper's value, written as :attr:`value` writes the config's.
        value: ``config -> cell``; called with the ``paper`` and the ``tiny`` config.
        where: where in the code it is set (``module`` or ``module:object``).
        deviation: empty when the ``paper`` config is the paper (checked); else the difference
            and its reason.
    """

    spec: str
    paper: str
    value: Callable[[Any], str]
    where: str
    deviation: str = ""


@dataclass(frozen=True)
class Row:
    """A computed row of the table."""

    spec: str
    paper: str
    paper_config: str
    tiny_config: str
    where: str
    verdict: str
    claims_same: bool


def _module(recipe: str) -> Any:
    """The module of ``recipe``'s :data:`SPECS`, ``PAPER`` and ``configs()`` (its ``Recipe.fidelity``)."""
    from strokesynth.recipes.registry import RECIPES

    name = RECIPES.get(recipe).fidelity
    if name is None:
        raise KeyError(f"no fidelity table for {recipe!r} (tables: {', '.join(systems())})")
    return importlib.import_module(name)


def rows(recipe: str) -> list[Row]:
    """The computed rows of ``recipe``'s table (builds the networks the configs name)."""
    mod = _module(recipe)
    paper, tiny = mod.configs()
    out = []
    for s in mod.SPECS:
        out.append(Row(s.spec, s.paper, s.value(paper), s.value(tiny), s.where,
                       "same" if not s.deviation else f"deviation: {s.deviation}", not s.deviation))
    return out


def check(recipe: str) -> list[str]:
    """The rows that claim "same" while the ``paper`` config's cell differs from the paper's."""
    return [f"{r.spec}: paper {r.paper!r}, paper config {r.paper_config!r}" for r in rows(recipe)
            if r.claims_same and r.paper_config != r.paper]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(recipe: str) -> str:
    """The Markdown table of ``recipe`` (its docs page holds the same text)."""
    mod = _module(recipe)
    lines = [f"Paper: {mod.PAPER}. Generated from the code (`strokesynth describe --recipe {recipe}`), "
             "checked by `tests/recipes/test_fidelity.py`; a row marked *same* is compared with the paper's "
             "value character for character.",
             "",
             "| spec (paper section) | the paper | `paper` config | `tiny` config | where in the code | |",
             "|---|---|---|---|---|---|"]
    for r in rows(recipe):
        lines.append("| " + " | ".join(_cell(x) for x in (r.spec, r.paper, r.paper_config, r.tiny_config,
                                                           f"`{r.where}`", r.verdict)) + " |")
    return "\n".join(lines)


def docs_section(text: str) -> str:
    """The fidelity table held in a docs page (between the markers)."""
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:stop].strip()


def describe_fidelity(recipe: str) -> str:
    """The table as ``strokesynth describe`` prints it."""
    return f"Paper fidelity of `{recipe}`:\n\n" + render(recipe)


def count(net: Any) -> str:
    """A parameter count as the tables write it (``11,378,177``)."""
    from strokesynth.nets import count_parameters

    return f"{count_parameters(net):,}"


def millions(net: Any) -> str:
    """A parameter count in millions to two decimals (``33.84 M``), as papers print them."""
    from strokesynth.nets import count_parameters

    return f"{count_parameters(net) / 1e6:.2f} M"
