"""Where computation runs: the CPUs this process may use, torch's thread count, the device.

One copy of each, used by extraction, training, the experiments and the service.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from importlib import metadata

__all__ = ["library_versions", "resolve_device", "torch_threads", "usable_cpus"]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, as a container or ``taskset`` sets it).

    ``os.cpu_count()`` counts the machine's CPUs, which over-subscribes a process pinned
    to fewer.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to ``"cuda"`` when a GPU is present, else ``"cpu"``; other names pass through."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@contextmanager
def torch_threads(n: int | None):
    """Run the block with torch's intra-op thread count set to ``n`` (``None``: leave it).

    Small networks on a few CPUs train several times faster on one thread than on
    torch's default (one per core), which spends the difference synchronising.
    """
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: The distributions whose versions determine a model's or a report's numbers.
VERSIONED = ("genreseg", "numpy", "scipy", "torch", "scikit-learn", "kymatio", "librosa", "soxr", "av",
             "soundfile")


def library_versions(names=VERSIONED) -> dict:
    """Installed versions of ``names`` (from distribution metadata: nothing is imported), and Python's."""
    import platform

    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
