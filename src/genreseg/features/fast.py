"""Band-limited second-order time scattering, equal to kymatio 0.3.0's ``Scattering1D``.

:class:`FastScattering1D` computes what ``kymatio.torch.Scattering1D(J, shape, Q,
oversampling=oversampling, max_order=2)`` computes -- same filters, same reflect
padding, same output frames and channel order, same (unnormalised) scale factors --
but does only the work that band-limited filters and a coarse output grid need:

* **one real FFT of the input** (kymatio runs a complex FFT of the real signal), and
  each wavelet multiplies only the bins of its *frequency support*, where the
  Fourier-domain filter exceeds ``1e-7`` of its peak (the filters are Gaussians; what
  is dropped is below float32 resolution of the products);
* **each inverse FFT runs at the smallest length its path needs.** A wavelet's band
  is placed at the start of a short spectrum ("demodulated"): that multiplies the
  complex signal by a unit-modulus phase, which the modulus removes. The length
  ``L`` is chosen so that the part of ``|x * psi|``'s spectrum that later stages
  read is not aliased beyond a measured tolerance (:data:`RATE_MARGIN_1`,
  :data:`RATE_MARGIN_2`), and never exceeds kymatio's own length. ``L`` need not
  divide the padded length ``N``: samples at spacing ``N / L`` of an ``N``-periodic
  band-limited signal have their DFT on the same bin grid ``k / N``;
* **second-order paths are batched**: for each second-order wavelet, all the
  first-order signals it applies to are stacked, and one batched inverse FFT,
  modulus and FFT serve them all;
* **the low-pass phi and the output sampling are one small matrix product**: phi
  has ``2K + 1`` non-negligible bins (``K = 36`` for ``J = 14`` and ``N = 2^20``) and
  only ``n_frames`` outputs are wanted, so ``S(t_m) = Re sum_k c_k phi_k U_hat[k]
  exp(2 pi i k t_m / N)`` is a ``(2K + 2) x n_frames`` matmul instead of a multiply,
  a periodisation and an inverse FFT per path. The ``t_m`` are multiples of kymatio's
  output stride, so this sum equals kymatio's periodised one exactly.

kymatio 0.3.0 periodises subsampled filters with a *mean* over periods
(``filter_bank.periodize_filter_fourier``), so a filter applied at subsampling
``2**k`` is scaled by ``2**-k``: its first-order output carries a factor ``2**-k1``
and its second-order output ``2**-(2 k1 + k2)`` (``k1``, ``k2`` its subsampling
exponents). We apply the same factors, so the outputs are equal, not proportional.

The plan (supports, cropped filter values, FFT lengths, output grid; ~15 MB for the
pipeline's window) takes ~2-3 s to design, so it is cached as an ``.npz`` (no pickle)
under ``$GENRESEG_CACHE`` or ``~/.cache/genreseg``, keyed by every parameter and
:data:`FORMAT_VERSION`; later constructions load it in ~0.05 s. A missing,
unreadable or inconsistent cache file is redesigned and atomically replaced.

Accuracy against kymatio (float32 both), 24 gtzan_mini windows of 68 * 8192 samples
(J=14, Q=(8, 1), oversampling 1), worst window: relative L2 difference 4.0e-6
(order 0), 3.6e-6 (order 1), 2.6e-5 (order 2). Per channel, the weakest
second-order channels differ by up to ~4e-4 relative (99th percentile 1.2e-4):
they are where aliasing of the modulus shows most. For scale, kymatio itself
differs from an alias-free float64 computation by 1e-6 / 2e-6 / 1e-5 per order and
up to 3e-4 per channel. Cost: ~29 N FFT samples per window against kymatio's
~62 N complex FFTs plus ~100 full-length products; 6-7x less CPU time.
``tests/test_fast_backend.py`` asserts <= 1e-4 per order.

The pipeline builds the transform with ``periodic=True``: its windows (2^20
samples) carry their own context and padding (:mod:`genreseg.features.framing`),
so the transform neither pads them nor drops frames; kymatio's output is the
periodic transform of kymatio's padded signal, so nothing else changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..runtime import usable_cpus

#: Bump when the plan's content or layout changes: old cache files are then ignored.
FORMAT_VERSION = 2

#: A filter's support is where its Fourier transform exceeds this fraction of its peak.
#: Dropping the rest changes outputs by ~1e-8 relative (the filters are Gaussians).
SUPPORT_THRESHOLD = 1e-7

#: First-order FFT length ``L1 >= need + RATE_MARGIN_1 * W1``: ``W1`` is the wavelet's
#: support width (the width of ``|x * psi1|``'s spectrum before the modulus spreads
#: it) and ``need`` the highest bin phi and the second-order wavelets read from it.
#: The modulus is not band-limited, so what lies beyond ``L1 - need`` aliases into
#: what is read. Worst relative L2 error vs kymatio over 24 gtzan_mini windows
#: (J=14, Q=(8, 1)), order 1 / order 2: 7.9e-6 / 5.1e-5 at 2, 4.0e-6 / 2.9e-5 at 3,
#: 2.3e-6 / 2.7e-5 at 4 (with RATE_MARGIN_2 = 1.5, and any 5-smooth FFT length).
RATE_MARGIN_1 = 3.0

#: Second-order FFT length ``L2 >= K + RATE_MARGIN_2 * W2`` (``W2`` the second-order
#: wavelet's support width, ``K`` phi's). Order-2 error as above: 4.0e-5 at 1.25,
#: 2.9e-5 at 1.5, 2.5e-5 at 2 (with RATE_MARGIN_1 = 3). With the FFT lengths of
#: :func:`_path_size`, (3, 1.5) costs 28.6 N FFT samples per window (N = padded
#: length) against kymatio's 62 N (complex, each forward and inverse).
RATE_MARGIN_2 = 1.5

#: Paths whose kymatio FFT length is at most this many samples use exactly kymatio's
#: length (and so its aliasing): they are cheap, and they are the low-energy paths
#: where a shorter FFT's aliasing shows most in per-channel relative terms.
RATE_FLOOR = 16384

#: FFT lengths above this are restricted to 2^k and 3 * 2^k (see :func:`_path_size`).
COARSE_SIZES_FROM = 1 << 16

#: kymatio's filter-bank constants (``ScatteringBase1D.build``).
R_PSI = math.sqrt(0.5)
SIGMA0 = 0.1
ALPHA = 5.0

#: Largest number of complex elements (batch x paths x length) in one batched
#: second-order FFT; bounds the transient memory of a call (~24 bytes each: the
#: spectrum, its inverse FFT, the modulus and its FFT). 2^22 was no faster.
CHUNK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------- design
def _nice_size(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= n: fast FFT sizes for pocketfft and cuFFT."""
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _path_size(n: float) -> int:
    """FFT length for a path needing ``n`` samples.

    Small lengths are any 5-smooth number. Above :data:`COARSE_SIZES_FROM` only
    ``2^k`` and ``3 * 2^k`` are used: every distinct FFT length costs an FFT plan of
    ~8 bytes per sample (pocketfft keeps the last 16; cuFFT caches them too), and
    with a 5-smooth length per wavelet the plans alone held ~65 MB more at the
    pipeline's window. The coarser ladder costs ~10% more FFT work.
    """
    n = max(int(math.ceil(n)), 1)
    if n <= COARSE_SIZES_FROM:
        return _nice_size(n)
    pow2 = 1 << (n - 1).bit_length()
    three = 3 << ((n + 2) // 3 - 1).bit_length()  # 3 * (smallest 2^k >= ceil(n / 3))
    return min(pow2, three)


def _rate_margins(Q: tuple[int, int], oversampling: int) -> tuple[float, float]:
    """Rate margins for this filter bank: the tuned ones, scaled up where they fall short.

    The margins were tuned for Q2 = 1 and oversampling <= 2 (error vs kymatio within
    a factor 2 at J = 10-14, Q1 = 4-16, oversampling 0-2). Narrower second-order
    wavelets (Q2 > 1) and kymatio's extra accuracy at oversampling > 2 need more: at
    Q = (4, 2) the order-2 error was 9.5e-5 unscaled and 1.4e-5 with both margins
    doubled; at Q = (12, 2), oversampling 3, 2.6e-4 unscaled and 1.2e-5 with x4.
    """
    factor = Q[1] * 2 ** max(oversampling - 2, 0)
    return RATE_MARGIN_1 * factor, RATE_MARGIN_2 * factor


def _fft_length(wanted: float, width: int, K: int, kymatio_length: int) -> int:
    """FFT length of one path: ``wanted`` (from the rate margins), at least the band
    ``width`` and room for phi's bins ``-K .. K``, at most kymatio's own length; and
    kymatio's own length whenever that is at most :data:`RATE_FLOOR` (cheap paths)."""
    if kymatio_length <= RATE_FLOOR:
        return kymatio_length
    return min(_path_size(max(wanted, width, 2 * K + 2)), kymatio_length)


def _morlet_band(N: int, xi: float | None, sigma: float, threshold: float):
    """kymatio's ``morlet_1d(N, xi, sigma)`` on the bins where it is not negligible.

    Evaluates kymatio's formula (Gabor minus ``kappa`` times a Gaussian, each
    periodised over ``2P - 1`` periods with a mean, then L1-normalised in time) only
    on a contiguous range of signed bins around the pass band instead of all ``N``,
    which is what makes the first build take seconds rather than kymatio's 10-20 s.

    Returns
    -------
    lo : int
        First signed bin of the support (bins are taken modulo ``N``).
    values : np.ndarray, float64
        Filter values at bins ``lo, lo + 1, ...``: where ``|filter| > threshold *
        max|filter|``, plus the (sub-threshold) bins between such bins.
    """
    from .kymatio_compat import ensure_sph_harm

    ensure_sph_harm()
    from kymatio.scattering1d.filter_bank import adaptive_choice_P

    P = min(adaptive_choice_P(sigma), 5)
    two_var = 2 * sigma**2

    def periodised(n, centre):
        # mean over the 2P - 1 periods of exp(-(n + i - centre)^2 / 2 sigma^2), as
        # morlet_1d; periods where every term underflows to 0.0 are skipped (exact).
        total = np.zeros_like(n)
        for i in range(1 - P, P):
            d = n + i - centre
            if np.abs(d).min() < 40 * sigma:
                total += np.exp(-(d**2) / two_var)
        return total / (2 * P - 1)

    zero = np.zeros(1)
    kappa = periodised(zero, xi)[0] / periodised(zero, 0.0)[0] if xi else 0.0

    # Candidate bins: within 7 sigma of the Gabor centre (outside, values are < 2.3e-11
    # of the peak) and, when the kappa term is not negligible, of zero.
    r = 7.0 * sigma
    centres = [xi] if xi else [0.0]
    if xi and kappa > 1e-12:
        centres.append(0.0)
    lo = min(math.floor((c - r) * N) for c in centres)
    hi = max(math.ceil((c + r) * N) for c in centres)
    if hi - lo + 1 >= N:
        lo, hi = -(N // 2) + 1, N // 2
    k = np.arange(lo, hi + 1)
    n = np.mod(k, N) / N
    values = periodised(n, xi) - kappa * periodised(n, 0.0) if xi else periodised(n, 0.0)

    # kymatio divides by the L1 norm of the N-sample impulse response. The response
    # is band-limited to the candidate bins and its modulus is smooth on the scale of
    # N / bandwidth, so a Riemann sum over L >= 4 x bandwidth (and >= 2^16) equally
    # spaced samples instead of all N gives the same sum at a fraction of the cost
    # (checked against morlet_1d: 1e-10 relative for J = 14 and N = 2^20; with fewer
    # samples bands only a few bins wide, whose envelope spans the whole period,
    # were off by up to 1e-4).
    import scipy.fft

    L = _nice_size(max(4 * len(k), 1 << 16))
    if L >= N // 2:  # small N, or a wide band: the exact N-sample sum
        L = N
    spectrum = np.zeros(L, dtype=complex)
    spectrum[np.mod(np.arange(len(k)), L) if L < N else np.mod(k, N)] = values
    values = values / np.abs(scipy.fft.ifft(spectrum)).sum()

    mag = np.abs(values)
    keep = np.flatnonzero(mag > threshold * mag.max())
    return int(k[keep[0]]), values[keep[0]:keep[-1] + 1]


def _padded_length(J: int, shape: int) -> int:
    """kymatio's padded length ``2**J_pad`` (``ScatteringBase1D.build``)."""
    from .kymatio_compat import ensure_sph_harm

    ensure_sph_harm()
    from kymatio.scattering1d.filter_bank import compute_temporal_support, gauss_1d

    phi_f = gauss_1d(shape, SIGMA0 / 2**J)
    min_to_pad = 3 * compute_temporal_support(phi_f.reshape(1, -1), criterion_amplitude=1e-3)
    j_max_support = int(np.floor(np.log2(3 * shape - 2)))
    j_pad = min(int(np.ceil(np.log2(shape + 2 * min_to_pad))), j_max_support)
    return 2**j_pad


def design_plan(J: int, Q: tuple[int, int], shape: int, oversampling: int, periodic: bool = False) -> dict:
    """Design the transform: supports, cropped filters, FFT lengths, output grid.

    With ``periodic`` the window *is* the period: no padding (``N = shape``, which
    must be a multiple of the hop) and an output frame at every multiple of the hop.
    Otherwise the plan is kymatio's for a signal of length ``shape``: reflect-padded
    to kymatio's ``2**J_pad`` and only the frames kymatio returns.

    Returns
    -------
    dict of np.ndarray
        The plan as stored in the cache file (see :func:`load_plan`).
    """
    from .kymatio_compat import ensure_sph_harm

    ensure_sph_harm()
    from kymatio.scattering1d.filter_bank import compute_params_filterbank
    from kymatio.scattering1d.utils import compute_border_indices, compute_padding

    Q1, Q2 = Q
    log2_T = J  # T = 2**J (kymatio's default averaging)
    k0 = max(log2_T - oversampling, 0)
    if periodic:
        if shape % 2**k0:
            raise ValueError(f"a periodic window must be a multiple of the hop {2**k0}, got {shape}")
        N, pad_left, pad_right = shape, 0, 0
        t_out = np.arange(shape // 2**k0) * 2**k0
    else:
        N = _padded_length(J, shape)
        pad_left, pad_right = compute_padding(N, shape)
        ind_start, ind_end = compute_border_indices(log2_T, J, pad_left, pad_left + shape)
        t_out = (ind_start[k0] + np.arange(ind_end[k0] - ind_start[k0])) * 2**k0

    # Low-pass: real and even, so bins 0..K describe it.
    lo, phi = _morlet_band(N, None, SIGMA0 / 2**J, SUPPORT_THRESHOLD)
    K = -lo
    if len(phi) != 2 * K + 1:
        raise ValueError("the low-pass filter's support is not symmetric")
    phi = phi[K:]

    sigma_min = SIGMA0 / 2**J
    xi1s, sigma1s, j1s = compute_params_filterbank(sigma_min, Q1, ALPHA, R_PSI)
    xi2s, sigma2s, j2s = compute_params_filterbank(sigma_min, Q2, ALPHA, R_PSI)
    min_j1 = min(j1s)
    # Second-order wavelets used by at least one path (j2 > j1).
    used2 = [n2 for n2 in range(len(xi2s)) if j2s[n2] > min_j1]

    bands2 = {n2: _morlet_band(N, xi2s[n2], sigma2s[n2], SUPPORT_THRESHOLD) for n2 in used2}
    lo2 = np.array([bands2[n][0] for n in used2], dtype=np.int64)
    w2 = np.array([len(bands2[n][1]) for n in used2], dtype=np.int64)
    j2 = np.array([j2s[n] for n in used2], dtype=np.int64)
    # kymatio's own second-order length is N / 2**max(j2 - os, k1) = N / 2**(j2 - os),
    # as k1 <= j1 - os < j2 - os.
    margin1, margin2 = _rate_margins(Q, oversampling)
    L2 = np.array([_fft_length(K + margin2 * w, w, K, N >> max(min(int(j), log2_T) - oversampling, 0))
                   for w, j in zip(w2, j2)], dtype=np.int64)

    lo1, w1, L1, k1, v1 = [], [], [], [], []
    for xi, sigma, j in zip(xi1s, sigma1s, j1s):
        lo, values = _morlet_band(N, xi, sigma, SUPPORT_THRESHOLD)
        kk1 = max(min(j, log2_T) - oversampling, 0)
        # Signed bins of |x * psi1|'s spectrum that phi and the second order read.
        reads = [(-K, K)] + [(int(lo2[i]), int(lo2[i] + w2[i] - 1)) for i in range(len(used2)) if j2[i] > j]
        need = max(max(-a, b) for a, b in reads)
        L = _fft_length(need + margin1 * len(values), len(values), K, N >> kk1)
        lo1.append(lo), w1.append(len(values)), L1.append(L), k1.append(kk1), v1.append(values)

    plan = {
        "format_version": np.int64(FORMAT_VERSION),
        "params": np.array([J, Q1, Q2, shape, oversampling, int(periodic)], dtype=np.int64),
        "N": np.int64(N), "pad": np.array([pad_left, pad_right], dtype=np.int64),
        "t_out": t_out.astype(np.int64), "phi": phi.astype(np.float64),
        "lo1": np.array(lo1, dtype=np.int64), "w1": np.array(w1, dtype=np.int64),
        "L1": np.array(L1, dtype=np.int64), "k1": np.array(k1, dtype=np.int64),
        "j1": np.array(j1s, dtype=np.int64),
        "v1": np.concatenate(v1).astype(np.float32),
        "n2": np.array(used2, dtype=np.int64), "lo2": lo2, "w2": w2, "L2": L2, "j2": j2,
        "v2": np.concatenate([bands2[n][1] for n in used2]).astype(np.float32)
        if used2 else np.zeros(0, np.float32),
    }
    _check_plan(plan, J, Q, shape, oversampling, periodic)
    return plan


def _check_plan(plan: dict, J, Q, shape, oversampling, periodic) -> None:
    """Raise ValueError unless ``plan`` is a complete, consistent plan for these parameters."""
    need = ("format_version", "params", "N", "pad", "t_out", "phi", "lo1", "w1", "L1", "k1", "j1",
            "v1", "n2", "lo2", "w2", "L2", "j2", "v2")
    missing = [k for k in need if k not in plan]
    if missing:
        raise ValueError(f"plan lacks {missing}")
    if int(plan["format_version"]) != FORMAT_VERSION:
        raise ValueError("plan format version mismatch")
    if list(np.asarray(plan["params"])) != [J, Q[0], Q[1], shape, oversampling, int(periodic)]:
        raise ValueError("plan parameters mismatch")
    n1 = len(plan["lo1"])
    if not all(len(plan[k]) == n1 for k in ("w1", "L1", "k1", "j1")):
        raise ValueError("inconsistent first-order arrays")
    if not all(len(plan[k]) == len(plan["n2"]) for k in ("lo2", "w2", "L2", "j2")):
        raise ValueError("inconsistent second-order arrays")
    if min(plan["L1"].min(initial=1), plan["L2"].min(initial=1), plan["w1"].min(initial=1)) < 1:
        raise ValueError("non-positive lengths")
    if int(np.sum(plan["w1"])) != len(plan["v1"]) or int(np.sum(plan["w2"])) != len(plan["v2"]):
        raise ValueError("filter values do not match supports")
    if not np.all(np.isfinite(plan["v1"])) or not np.all(np.isfinite(plan["v2"])):
        raise ValueError("non-finite filter values")


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """Where plans are cached: ``$GENRESEG_CACHE`` or ``~/.cache/genreseg``."""
    root = os.environ.get("GENRESEG_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "genreseg"


def _kymatio_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kymatio")
    except PackageNotFoundError:  # pragma: no cover - kymatio is a dependency
        return "unknown"


def plan_path(J: int, Q: tuple[int, int], shape: int, oversampling: int, periodic: bool = False) -> Path:
    """Cache file of the plan for these parameters (and this code's design constants)."""
    key = json.dumps({
        "J": J, "Q": list(Q), "shape": shape, "oversampling": oversampling, "periodic": bool(periodic),
        "format": FORMAT_VERSION, "threshold": SUPPORT_THRESHOLD,
        "rates": [RATE_MARGIN_1, RATE_MARGIN_2, RATE_FLOOR, COARSE_SIZES_FROM],
        "constants": [R_PSI, SIGMA0, ALPHA], "kymatio": _kymatio_version(),
    }, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir() / f"fast-scattering1d-v{FORMAT_VERSION}-J{J}-Q{Q[0]}_{Q[1]}-N{shape}{'p' if periodic else ''}-{digest}.npz"


def load_plan(J: int, Q: tuple[int, int], shape: int, oversampling: int, periodic: bool = False,
              use_cache: bool = True) -> dict:
    """The plan for these parameters: from the cache when valid, else designed and cached.

    The cache is best-effort: an unreadable or inconsistent file is redesigned and
    replaced, and a cache directory that cannot be written only costs the redesign
    next time. Files are written to a temporary name and renamed, so a concurrent
    reader never sees half a file.
    """
    path = plan_path(J, Q, shape, oversampling, periodic)
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                plan = {k: data[k] for k in data.files}
            _check_plan(plan, J, Q, shape, oversampling, periodic)
            return plan
        except Exception:  # corrupt, truncated or stale: fall through and rebuild
            pass
    plan = design_plan(J, Q, shape, oversampling, periodic)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, **plan)
                os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a shareable cache
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass
    return plan


# --------------------------------------------------------------------------- array engines
_cpu_threads: int | None = None


def set_cpu_threads(n: int | None) -> None:
    """Threads the CPU engine uses from now on in this process (None: the default)."""
    global _cpu_threads
    _cpu_threads = None if n is None else max(1, int(n))


def cpu_threads() -> int:
    """Threads of the CPU engine: :func:`set_cpu_threads`'s value; else torch's
    setting when torch is loaded (so ``torch.set_num_threads`` keeps working as the
    one knob); else the cores this process may run on."""
    if _cpu_threads is not None:
        return _cpu_threads
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return usable_cpus()


class _NumpyEngine:
    """CPU arrays: NumPy with SciPy's pocketfft.

    Measured on the 2-core AMD EPYC development machine, single thread: a real FFT
    of 2^19 samples takes 3.6 ms in ``scipy.fft`` against ~8 ms in torch's MKL
    build, and ``np.abs`` of 2^19 complex64 0.35 ms against 2.4 ms for ``torch.abs``
    (which goes through a scalar hypot), so on CPU this engine is 1.4x faster overall.
    Threads follow :func:`cpu_threads`. It does not import torch: a CPU extraction
    worker stays ~200 MB smaller and starts ~1 s sooner without it.
    """

    name = "numpy"
    complex64, float32 = np.complex64, np.float32

    def __init__(self):
        import scipy.fft

        self._fft = scipy.fft
        self._workers = None  # FFT workers; None: cpu_threads()
        self._pool = None

    @property
    def workers(self) -> int:
        return self._workers or cpu_threads()

    @contextlib.contextmanager
    def parallel(self):
        """``run(fn, items)`` for independent paths: threads when :func:`cpu_threads` > 1.

        pocketfft only parallelises across the rows of one call, and a first-order
        call has one row per window, so paths are spread over a thread pool instead
        (SciPy's FFTs and NumPy's large-array loops release the GIL), each FFT then
        single-threaded.
        """
        threads = cpu_threads()
        if threads <= 1:
            yield lambda fn, items: [fn(item) for item in items]
            return
        if self._pool is None or self._pool._max_workers != threads:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fast-scattering")
        self._workers = 1
        try:
            yield lambda fn, items: list(self._pool.map(fn, items))
        finally:
            self._workers = None

    def no_grad(self):
        return contextlib.nullcontext()

    def asarray(self, a, dtype=None):
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        return a.astype(dtype, copy=False) if dtype is not None else a

    def to_numpy(self, a):
        return a

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def pad_reflect(self, x, left: int, right: int):
        return np.pad(x, ((0, 0), (left, right)), mode="reflect")

    def rfft(self, a):
        return self._fft.rfft(a, axis=-1, workers=self.workers)

    def ifft(self, z):
        return self._fft.ifft(z, axis=-1, overwrite_x=True, workers=self.workers)

    def abs(self, z):
        return np.abs(z)

    def mul(self, a, b, out):
        np.multiply(a, b, out=out)

    def flip_conj(self, a):
        return np.conj(a[..., ::-1])

    def zero(self, a):
        a.fill(0)

    def copy(self, a):
        return a.copy()

    def take_bins(self, half, idx, mirrored):
        band = np.take(half, idx, axis=-1)
        return np.where(mirrored, np.conj(band), band)

    def real_pairs(self, z):
        """(..., n) complex -> (..., 2n) real, re/im interleaved (a view when possible)."""
        z = np.ascontiguousarray(z) if z.strides[-1] != z.itemsize else z
        return z.view(np.float32)


class _TorchEngine:
    """torch arrays on any device (CUDA; also usable on CPU, see ``engine``)."""

    name = "torch"

    def __init__(self, torch, device):
        self._t, self.device = torch, device
        self.complex64, self.float32 = torch.complex64, torch.float32

    @contextlib.contextmanager
    def parallel(self):
        """Paths run in order: torch parallelises inside each op (and CUDA queues them)."""
        yield lambda fn, items: [fn(item) for item in items]

    def no_grad(self):
        return self._t.inference_mode()

    def asarray(self, a, dtype=None):
        t = self._t
        a = a if isinstance(a, t.Tensor) else t.from_numpy(np.ascontiguousarray(a))
        return a.to(device=self.device, dtype=dtype if dtype is not None else a.dtype)

    def to_numpy(self, a):
        return a.cpu().numpy()

    def empty(self, shape, dtype):
        return self._t.empty(shape, dtype=dtype, device=self.device)

    def pad_reflect(self, x, left: int, right: int):
        return self._t.nn.functional.pad(x[:, None], (left, right), mode="reflect")[:, 0].contiguous()

    def rfft(self, a):
        return self._t.fft.rfft(a)

    def ifft(self, z):
        return self._t.fft.ifft(z)

    def abs(self, z):
        return z.abs()

    def mul(self, a, b, out):
        self._t.mul(a, b, out=out)

    def flip_conj(self, a):
        return a.flip(-1).conj().resolve_conj()

    def zero(self, a):
        a.zero_()

    def copy(self, a):
        return a.clone()

    def take_bins(self, half, idx, mirrored):
        band = half.index_select(-1, idx)
        return self._t.where(mirrored, band.conj(), band)

    def real_pairs(self, z):
        r = self._t.view_as_real(z)
        return r.reshape(*r.shape[:-2], -1)


# --------------------------------------------------------------------------- transform
class _Band:
    """Multiply bins ``lo .. lo+w-1`` of a real signal's spectrum by a filter, into a buffer.

    The source is the rfft ``half`` (bins ``0 .. L_src//2``) of a real signal of
    length ``L_src``; bins outside that range follow from Hermitian symmetry, so the
    band is read as at most three contiguous pieces (negative bins, ``0 .. L_src//2``,
    bins above Nyquist), the mirrored ones flipped and conjugated. The product goes to
    ``dst[..., 0:w]`` ("demodulated": the modulus that follows ignores where the band
    sits) and the rest of ``dst`` is zeroed.
    """

    def __init__(self, engine, lo: int, w: int, L_src: int, L_dst: int, v):
        self.w, self.L_dst = w, L_dst
        top = L_src // 2
        hi = lo + w - 1
        self.pieces = []
        if w <= L_dst and -top <= lo and hi < L_src:
            # (dst offset, length, first source index, mirrored) per piece.
            if lo < 0:  # bins lo .. min(hi, -1) are conj(half[-k])
                n = min(-lo, w)
                self.pieces.append((0, n, -lo - n + 1, True))
            a, b = max(lo, 0), min(hi, top)
            if b >= a:  # bins a .. b are half[k]
                self.pieces.append((a - lo, b - a + 1, a, False))
            if hi > top:  # bins max(lo, top + 1) .. hi are conj(half[L_src - k])
                t0 = max(lo, top + 1)
                self.pieces.append((t0 - lo, hi - t0 + 1, L_src - hi, True))
            self.mult = [v[d0:d0 + n] for d0, n, _, _ in self.pieces]
            self.generic = None
        else:  # arbitrary wrap-around: index gather, then periodise into L_dst
            k = np.mod(np.arange(lo, hi + 1), L_src)
            mirrored = k > top
            self.generic = (engine.asarray(np.where(mirrored, L_src - k, k)), engine.asarray(mirrored), v)

    def __call__(self, engine, dst, half) -> None:
        w, L = self.w, self.L_dst
        if self.generic is None:
            if w < L:
                engine.zero(dst[..., w:])
            for (d0, n, s0, flip), mult in zip(self.pieces, self.mult):
                src = half[..., s0:s0 + n]
                engine.mul(engine.flip_conj(src) if flip else src, mult, out=dst[..., d0:d0 + n])
            return
        idx, mirrored, v = self.generic
        band = engine.take_bins(half, idx, mirrored) * v
        engine.zero(dst)
        for s in range(0, w, L):  # periodising the spectrum = subsampling in time
            dst[..., :min(L, w - s)] += band[..., s:s + L]


class FastScattering1D:
    """Second-order time scattering equal to kymatio 0.3.0's ``Scattering1D``.

    Parameters
    ----------
    J : int
        log2 of the averaging scale ``T``.
    Q : tuple of int
        Wavelets per octave at first and second order.
    shape : int
        Length of the windows the transform is called on.
    oversampling : int
        Output hop is ``2**(J - oversampling)``.
    device : str
        "cpu", "cuda", "cuda:1", ...
    engine : {"auto", "numpy", "torch"}
        Array library of the computation. "auto" is NumPy/SciPy on CPU (faster
        there, see :class:`_NumpyEngine`) and torch on other devices; "torch" on
        CPU runs the exact code path CUDA runs.
    use_cache : bool
        Load/store the plan in :func:`cache_dir`.
    periodic : bool
        Treat each window as one period of a periodic signal: no padding, and a
        frame at every multiple of the hop (``shape // hop`` frames). This is what
        the pipeline uses: its windows carry real context on both sides, so
        kymatio's extra reflect padding would be work spent on frames nobody
        reads. kymatio's own output is this transform applied to its padded
        signal. False (default): exactly kymatio's ``Scattering1D(J, shape, Q)``.

    Attributes
    ----------
    n_channels, n_frames : int
        Output size per window.
    max_batch : int
        Windows worth passing per call: 1, as a window is already large enough to
        amortise per-call overheads, and memory grows with the batch.

    Notes
    -----
    Calling it on ``x`` of shape ``(B, shape)`` float32 returns a float32 array
    ``(B, n_channels, n_frames)`` in kymatio's channel order: zeroth order, first
    order by ``n1``, second order by ``(n1, n2)`` with ``j2 > j1``.
    """

    max_batch = 1

    def __init__(self, J: int, Q: tuple[int, int], shape: int, oversampling: int, device: str = "cpu",
                 engine: str = "auto", use_cache: bool = True, periodic: bool = False):
        Q = tuple(int(q) for q in Q)
        if len(Q) != 2 or min(Q) < 1:
            raise ValueError(f"Q must be two integers >= 1, got {Q}")
        self.J, self.Q, self.shape, self.oversampling = int(J), Q, int(shape), int(oversampling)
        on_cpu = str(device).split(":")[0] == "cpu"  # "cpu" or "cpu:0", parsed without torch
        if engine == "auto":
            engine = "numpy" if on_cpu else "torch"
        if engine == "numpy" and not on_cpu:
            raise ValueError("the numpy engine runs on CPU only")
        if engine not in ("numpy", "torch"):
            raise ValueError(f"engine must be 'auto', 'numpy' or 'torch', got {engine!r}")
        if engine == "numpy":  # no torch import on this path (see _NumpyEngine)
            self.device, self._engine = "cpu", _NumpyEngine()
        else:
            import torch

            self.device = torch.device(device)
            self._engine = _TorchEngine(torch, self.device)
        self.engine = engine
        self.periodic = bool(periodic)
        plan = load_plan(self.J, Q, self.shape, self.oversampling, self.periodic, use_cache=use_cache)
        self._setup(plan)

    # ------------------------------------------------------------------ setup
    def _setup(self, plan: dict) -> None:
        eng = self._engine
        self.N = N = int(plan["N"])
        self.pad_left, self.pad_right = (int(p) for p in plan["pad"])
        t_out = plan["t_out"]
        phi = plan["phi"]
        K = self.K = len(phi) - 1
        self.n_frames = len(t_out)

        # Low-pass + output sampling as one real matmul: for a half spectrum U_hat of
        # a real signal, S(t_m) = Re sum_k c_k phi_k U_hat[k] e^{2 pi i k t_m / N},
        # c_0 = 1, c_k = 2 (the negative bins are the conjugates); rows alternate
        # Re/Im to match the interleaved real view of U_hat.
        E = np.exp(2j * np.pi * np.outer(np.arange(K + 1), t_out % N) / N)
        E *= (phi * np.where(np.arange(K + 1) == 0, 1.0, 2.0))[:, None]
        M = np.empty((2 * (K + 1), self.n_frames))
        M[0::2], M[1::2] = E.real, -E.imag
        self._lowpass_matrix = eng.asarray(M.astype(np.float32))

        lo1, w1, L1, k1, j1 = (plan[k].astype(int) for k in ("lo1", "w1", "L1", "k1", "j1"))
        v1 = eng.asarray(plan["v1"])
        offs = np.concatenate([[0], np.cumsum(w1)])
        self._first = [(int(L1[a]), _Band(eng, int(lo1[a]), int(w1[a]), N, int(L1[a]), v1[offs[a]:offs[a + 1]]))
                       for a in range(len(lo1))]

        n2, lo2, w2, L2, j2 = (plan[k].astype(int) for k in ("n2", "lo2", "w2", "L2", "j2"))
        v2 = eng.asarray(plan["v2"])
        offs2 = np.concatenate([[0], np.cumsum(w2)])

        # Channel order and kymatio's scale factors (module docstring). Bands are
        # placed unnormalised (no L / N factors); the modulus and the low-pass are
        # positively homogeneous, so one 1/N per channel at the end restores the true
        # sample values.
        n_first = len(lo1)
        scale = [1.0 / N] + [2.0 ** -int(k) / N for k in k1]
        channel = 1 + n_first
        paths = {i: [] for i in range(len(n2))}  # second-order wavelet -> [(n1, channel)]
        for a in range(n_first):
            for i in range(len(n2)):
                if j2[i] > j1[a]:
                    kk2 = max(min(int(j2[i]), self.J) - int(k1[a]) - self.oversampling, 0)
                    paths[i].append((a, channel))
                    scale.append(2.0 ** -(2 * int(k1[a]) + kk2) / N)
                    channel += 1
        self.n_channels = channel
        self._scale = eng.asarray(np.array(scale, dtype=np.float32)[:, None])

        # Second order, grouped by psi2 and chunked to bound memory: (L2, [(parent, band)], channels).
        self._second = []
        keep = {}  # parent -> highest bin of its spectrum that phi or a psi2 reads
        for i in range(len(n2)):
            if not paths[i]:
                continue
            v = v2[offs2[i]:offs2[i + 1]]
            L = int(L2[i])
            per_chunk = max(1, CHUNK_ELEMENTS // L)
            for s in range(0, len(paths[i]), per_chunk):
                chunk = paths[i][s:s + per_chunk]
                bands = [(a, _Band(eng, int(lo2[i]), int(w2[i]), int(L1[a]), L, v)) for a, _ in chunk]
                for a, _ in chunk:
                    keep[a] = max(keep.get(a, K), int(lo2[i] + w2[i] - 1), -int(lo2[i]))
                self._second.append((L, bands, eng.asarray(np.array([ch for _, ch in chunk]))))
        self._keep = {a: min(h, int(L1[a]) // 2) for a, h in keep.items()}

    def _lowpass(self, half, L: int):
        """phi-low-passed signal at the output times, from its length-``L`` half spectrum."""
        eng, K = self._engine, self.K
        if half.shape[-1] < K + 1:  # FFT shorter than phi's support (tiny windows)
            band = eng.empty(tuple(half.shape[:-1]) + (K + 1,), eng.complex64)
            _Band(eng, 0, K + 1, L, K + 1, eng.asarray(np.ones(K + 1, np.float32)))(eng, band, half)
            half = band
        return eng.real_pairs(half[..., :K + 1]) @ self._lowpass_matrix

    # ------------------------------------------------------------------ call
    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.shape:
            raise ValueError(f"expected windows of shape (B, {self.shape}), got {x.shape}")
        eng = self._engine
        with eng.no_grad():
            out = self._forward(eng.asarray(x))
        return np.asarray(eng.to_numpy(out), dtype=np.float32)

    def _forward(self, x):
        eng = self._engine
        B, N = x.shape[0], self.N
        out = eng.empty((B, self.n_channels, self.n_frames), eng.float32)

        X = eng.rfft(eng.pad_reflect(x, self.pad_left, self.pad_right))
        out[:, 0] = self._lowpass(X, N)
        spectra = {}

        def first_order(a):
            # |x * psi1| at rate L1 / N, its band moved to bins 0..w-1.
            L, band = self._first[a]
            Z = eng.empty((B, L), eng.complex64)
            band(eng, Z, X)
            half = eng.rfft(eng.abs(eng.ifft(Z)))
            del Z
            out[:, 1 + a] = self._lowpass(half, L)
            if a in self._keep:  # only the bins the second order reads stay alive
                spectra[a] = eng.copy(half[:, :self._keep[a] + 1])

        def second_order(group):
            # One psi2 and all the first-order signals it applies to, batched.
            L, bands, channels = group
            Z = eng.empty((B, len(bands), L), eng.complex64)
            for i, (a, band) in enumerate(bands):
                band(eng, Z[:, i], spectra[a])
            half = eng.rfft(eng.abs(eng.ifft(Z)))
            del Z
            out[:, channels] = self._lowpass(half, L)

        with eng.parallel() as run:
            run(first_order, range(len(self._first)))
            del X
            run(second_order, self._second)
        out *= self._scale
        return out
