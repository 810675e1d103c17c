"""Filter-bank design of the fast scattering transform: the plan (as kymatio's ``filter_bank.py``).

A *plan* is everything :class:`genreseg.features.fast.FastScattering1D` needs to know
about its filters and FFT lengths, as a flat dict of NumPy arrays (so that it can be
stored as an ``.npz`` without pickle, :mod:`genreseg.features.plan_cache`):

* the Morlet filter bank of kymatio 0.3.0 (:func:`_morlet_band`: kymatio's
  ``morlet_1d`` evaluated only on the bins of each filter's *frequency support*), with
  kymatio's constants :data:`R_PSI`, :data:`SIGMA0`, :data:`ALPHA` -- the one copy in
  the package, also used by :func:`genreseg.features.backends.raw_channel_meta`;
* the FFT length of every path, chosen from the rate margins (:data:`RATE_MARGIN_1`,
  :data:`RATE_MARGIN_2`) and the size ladder (:func:`_path_size`);
* the padding and the output grid (kymatio's, or one period per window).

:func:`design_plan` designs one; :func:`check_plan` is the plan format's contract
(:data:`FORMAT_VERSION`, the keys, consistent lengths), checked on every plan designed
or loaded. Designing takes ~2-3 s for the pipeline's window.
"""

from __future__ import annotations

import math

import numpy as np

from .kymatio_compat import kymatio_1d

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

#: kymatio 0.3.0's filter-bank constants. kymatio does not export them: it sets them
#: as attributes in ``ScatteringBase1D.build`` (``r_psi``, ``sigma0``, ``alpha``) and
#: repeats them as the defaults of ``filter_bank.scattering_filter_factory``
#: (``tests/test_fast_backend.py`` checks that they still agree).
R_PSI = math.sqrt(0.5)
SIGMA0 = 0.1
ALPHA = 5.0


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
    P = min(kymatio_1d("filter_bank").adaptive_choice_P(sigma), 5)
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
    fb = kymatio_1d("filter_bank")
    phi_f = fb.gauss_1d(shape, SIGMA0 / 2**J)
    min_to_pad = 3 * fb.compute_temporal_support(phi_f.reshape(1, -1), criterion_amplitude=1e-3)
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
        The plan as stored in the cache file (see :func:`genreseg.features.plan_cache.load_plan`).
    """
    compute_params_filterbank = kymatio_1d("filter_bank").compute_params_filterbank
    utils = kymatio_1d("utils")

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
        pad_left, pad_right = utils.compute_padding(N, shape)
        ind_start, ind_end = utils.compute_border_indices(log2_T, J, pad_left, pad_left + shape)
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
    check_plan(plan, J, Q, shape, oversampling, periodic)
    return plan


def check_plan(plan: dict, J, Q, shape, oversampling, periodic) -> None:
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
