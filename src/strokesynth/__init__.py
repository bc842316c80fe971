"""strokesynth: infarct core in acute ischemic stroke through image synthesis."""

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.errors import ConfigError, DataError, OutputError, StrokesynthError

__version__ = "0.1.0"

__all__ = ["Case", "ConfigError", "DataError", "OutputError", "StrokesynthError", "Volume", "__version__"]
