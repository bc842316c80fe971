"""What the machine has, so a command can refuse sizes it cannot hold before allocating them."""

from __future__ import annotations

import os

from strokesynth.errors import ConfigError

GIB = 1024**3


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (``MemAvailable`` of ``/proc/meminfo``;
    elsewhere the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def require_memory(need_bytes: float, where: str, what: str, *, share: float = 0.8) -> None:
    """Refuse with one line when ``need_bytes`` exceeds ``share`` of the available memory.

    Args:
        need_bytes: the estimate, from the command's sizes.
        where: the option or setting that asked for it (``--size``).
        what: what would be allocated (``"a forward pass of the cGAN generator at 32000x32000 px"``).
    """
    have = available_memory()
    if need_bytes > share * have:
        raise ConfigError(where, f"{what} needs about {need_bytes / GIB:.1f} GiB; this machine has "
                                 f"{have / GIB:.1f} GiB available: choose a smaller size")
