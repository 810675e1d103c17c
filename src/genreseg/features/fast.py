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
  read is not aliased beyond a measured tolerance
  (:data:`genreseg.features.filter_bank.RATE_MARGIN_1` and ``RATE_MARGIN_2``), and never exceeds kymatio's own length. ``L`` need not
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
(kymatio's ``filter_bank.periodize_filter_fourier``), so a filter applied at subsampling
``2**k`` is scaled by ``2**-k``: its first-order output carries a factor ``2**-k1``
and its second-order output ``2**-(2 k1 + k2)`` (``k1``, ``k2`` its subsampling
exponents). We apply the same factors, so the outputs are equal, not proportional.

The filters, FFT lengths and output grid are designed once per parameter set
(:mod:`genreseg.features.filter_bank`) and cached on disk
(:mod:`genreseg.features.plan_cache`); the arrays live in an engine
(:mod:`genreseg.features.engines`: NumPy/SciPy on CPU, torch on CUDA).

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

import functools

import numpy as np

from .engines import make_engine
from .plan_cache import load_plan

#: Largest number of complex elements (batch x paths x length) in one batched
#: second-order FFT; bounds the transient memory of a call (~24 bytes each: the
#: spectrum, its inverse FFT, the modulus and its FFT). 2^22 was no faster.
CHUNK_ELEMENTS = 1 << 20


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
        Array library of the computation (:func:`genreseg.features.engines.make_engine`).
        "auto" is NumPy/SciPy on CPU (faster there, see
        :class:`~genreseg.features.engines.NumpyEngine`) and torch on other devices;
        "torch" on CPU runs the exact code path CUDA runs.
    use_cache : bool
        Load/store the plan in :func:`genreseg.features.plan_cache.cache_dir`.
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
        self._engine = make_engine(engine, device)
        self.engine, self.device = self._engine.name, self._engine.device
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

        def first_order(a, X):
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
            run(functools.partial(first_order, X=X), range(len(self._first)))
            del X  # the input spectrum is not needed by the second order
            run(second_order, self._second)
        out *= self._scale
        return out
