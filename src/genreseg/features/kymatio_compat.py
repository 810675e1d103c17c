"""Import kymatio 0.3.0 whatever the SciPy version.

kymatio 0.3.0 does ``from scipy.special import sph_harm`` at import time (for its 3-D
transforms, which we never use). SciPy 1.17 removed ``sph_harm`` in favour of
``sph_harm_y``. We pin ``scipy<1.17`` in the project, and in addition install this
shim so that an environment with a newer SciPy (a user's notebook) still imports:
if ``sph_harm`` is missing we provide it, mapped onto ``sph_harm_y`` with the old
argument order ``sph_harm(m, n, theta, phi) == sph_harm_y(n, m, phi, theta)``.

Every import of kymatio in the package goes through :func:`import_scattering1d` (the
transform) or :func:`kymatio_1d` (its 1-D filter-bank helpers).
"""

from __future__ import annotations

import importlib

import scipy.special


def ensure_sph_harm() -> bool:
    """Provide ``scipy.special.sph_harm`` if this SciPy lacks it.

    Returns
    -------
    bool
        True when the shim was installed, False when SciPy already had it.
    """
    if hasattr(scipy.special, "sph_harm"):
        return False

    def sph_harm(m, n, theta, phi, out=None):  # legacy signature: order, degree, azimuth, polar
        return scipy.special.sph_harm_y(n, m, phi, theta)

    scipy.special.sph_harm = sph_harm
    return True


def import_scattering1d():
    """Return kymatio's torch ``Scattering1D`` class, shimming SciPy first."""
    ensure_sph_harm()
    from kymatio.torch import Scattering1D

    return Scattering1D


def kymatio_1d(name: str):
    """kymatio's ``kymatio.scattering1d.<name>`` module (``"filter_bank"``, ``"utils"``),
    shimming SciPy first. Neither imports torch."""
    ensure_sph_harm()
    return importlib.import_module(f"kymatio.scattering1d.{name}")
