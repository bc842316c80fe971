"""strokesynth: infarct core in acute ischemic stroke through image synthesis.

The names below are imported on first access (as HuggingFace's packages do), so that
``import strokesynth`` and the command line's ``--help`` load neither numpy nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {"Case": "strokesynth.data.case", "Volume": "strokesynth.data.volume", "ConfigError": "strokesynth.errors",
         "DataError": "strokesynth.errors", "OutputError": "strokesynth.errors", "StrokesynthError": "strokesynth.errors"}

__all__ = ["Case", "ConfigError", "DataError", "OutputError", "StrokesynthError", "Volume", "__version__"]

if TYPE_CHECKING:
    from strokesynth.data.case import Case
    from strokesynth.data.volume import Volume
    from strokesynth.errors import ConfigError, DataError, OutputError, StrokesynthError


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'strokesynth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
