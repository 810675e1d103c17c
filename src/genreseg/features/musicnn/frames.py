"""musicnn frames for the paper's pipeline: one frame every scattering hop, as a stream.

The tagger was trained on 3-s patches and answers one vector per patch. The paper's
frame classifiers need a *sequence* per track, and ``--features both`` needs it on the
scattering frames' grid. So frame ``m`` of a track (centred on sample ``m * hop`` at the
feature config's rate, as every family's) summarises the ``musicnn_window_s`` seconds of
audio centred there:

* the mid-end (front end + mid-end, 753 values per mel frame at 62.5 frames/s) is
  computed once over the whole track, in chunks with enough context that the chunks
  equal one pass (the network is convolutional in time);
* the back end (max and mean over the window, batch norm, dense 200, batch norm) then
  runs on each frame's window: ``"penultimate"`` keeps its 200-d output, ``"taggram"``
  the 50 tag probabilities, ``"midend"`` the window's mean mid-end (753-d).

Running the back end per window rather than the whole network per overlapping patch
costs one front-end pass per track whatever the hop (8x less work at the scattering hop
of 372 ms than overlapping 3-s patches would). It differs from patch-wise inference
only by the zero padding a patch sees at its own edges (a track's frame sees real
signal there). Windows are clipped at the track's ends.

The signal arrives as 22050 Hz blocks (what :class:`genreseg.audio.AudioStream` gives
every family) and is resampled to the tagger's 16 kHz with soxr as it streams; memory
stays at a chunk of mid-end (a few MB) whatever the track's length.
"""

from __future__ import annotations

import numpy as np

from ..framing import n_frames as frame_count
from .mel import MEL_HOP, MUSICNN_SAMPLE_RATE, N_FFT, log_mel, n_mel_frames
from .ops import same_padding

__all__ = ["MusicnnFrameStream", "iter_musicnn_features", "output_width"]

#: Mel frames on each side that one mid-end output depends on: the 128-tap temporal
#: convolution's "same" padding (63 before, 64 after) plus 3 per 7-tap mid-end layer.
RECEPTIVE_RADIUS = max(same_padding(128)) + 3 * 3  # 73
#: Mel frames of mid-end computed per network call, and the real context on each side
#: that makes chunk joins exact (at least the receptive radius).
CHUNK_FRAMES = 4096
CONTEXT_FRAMES = RECEPTIVE_RADIUS + 7
#: Windows pooled per back-end call (bounds the gathered (n, W, 753) block to ~20 MB).
WINDOW_BATCH = 32
MEL_RATE = MUSICNN_SAMPLE_RATE / MEL_HOP  # 62.5 frames per second


def output_width(output: str) -> int:
    """Values per frame of a musicnn ``output`` kind."""
    return {"penultimate": 200, "taggram": 50, "midend": 753}[output]


class MusicnnFrameStream:
    """Push audio blocks in, take musicnn frames out, with memory flat in the track's length.

    Parameters
    ----------
    config : genreseg.features.FeatureConfig
        ``sample_rate`` (of the blocks), ``hop`` (frame spacing), ``musicnn_model``,
        ``musicnn_output``, ``musicnn_window_s``.

    Examples
    --------
    >>> stream = MusicnnFrameStream(FeatureConfig(family="musicnn"))
    >>> frames = [stream.push(b) for b in blocks] + [stream.finish()]
    >>> np.concatenate(frames).shape     # (n_frames, 200)
    """

    def __init__(self, config):
        import soxr

        from .model import load_musicnn

        self.config = config
        self.model = load_musicnn(config.musicnn_model)
        self.width = output_width(config.musicnn_output)
        self.window = max(1, round(config.musicnn_window_s * MEL_RATE))
        self._resampler = soxr.ResampleStream(config.sample_rate, MUSICNN_SAMPLE_RATE, 1, dtype="float32",
                                              quality="HQ")
        self._n_in = 0  # samples pushed, at config.sample_rate
        # 16-kHz signal, reflect-padded at the start as librosa's centred STFT pads it:
        # _padded[j] is track sample j - N_FFT // 2.
        self._padded = np.zeros(0, np.float32)
        self._padded_offset = 0  # index (in padded coordinates) of _padded[0]
        self._started = False
        self._mel = np.zeros((0, 96), np.float32)
        self._mel_offset = 0  # mel frame index of _mel[0]
        self._mid = np.zeros((0, 753), np.float32)
        self._mid_offset = 0
        self._next_mid = 0  # first mel frame whose mid-end is not computed yet
        self._next_frame = 0

    # ------------------------------------------------------------------ public
    def push(self, block: np.ndarray) -> np.ndarray:
        """Take a block of audio at ``config.sample_rate``; return the frames now complete."""
        block = np.asarray(block, dtype=np.float32)
        self._n_in += len(block)
        self._take_16k(self._resampler.resample_chunk(block))
        self._compute_mel(final=False)
        self._compute_midend(n_mel=None)
        return self._emit(n_frames=None, n_mel=None)

    def finish(self) -> np.ndarray:
        """End of the track: the remaining frames (the total equals the scattering count)."""
        self._take_16k(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        n_mel = self._compute_mel(final=True)
        self._compute_midend(n_mel=n_mel)
        # As many frames as the scattering transform gives the track (one grid for every family).
        return self._emit(n_frames=frame_count(self._n_in, self.config.hop), n_mel=n_mel)

    # ------------------------------------------------------------------ 16 kHz signal and mel
    def _take_16k(self, samples: np.ndarray) -> None:
        half = N_FFT // 2
        if not self._started:
            self._padded = np.concatenate([self._padded, samples])
            if len(self._padded) <= half:
                return  # the start reflection needs half + 1 samples
            self._padded = np.concatenate([self._padded[half:0:-1], self._padded])
            self._started = True
            return
        self._padded = np.concatenate([self._padded, samples])

    def _compute_mel(self, final: bool) -> int | None:
        """Mel frames whose samples have all arrived (all of them when ``final``).

        Returns the track's mel-frame count when ``final``.
        """
        half = N_FFT // 2
        if final:
            if not self._started:
                raise ValueError(f"signal too short for musicnn: {len(self._padded)} samples at 16 kHz, "
                                 f"fewer than half an FFT ({half + 1})")
            n_track = self._padded_offset + len(self._padded) - half  # 16-kHz samples of the track
            # The end reflection, as the start's: the last `half` samples before the last one, reversed.
            self._padded = np.concatenate([self._padded, self._padded[-half - 1:-1][::-1]])
            n_mel = n_mel_frames(n_track)
        elif not self._started:
            return None
        else:
            n_mel = (self._padded_offset + len(self._padded) - N_FFT) // MEL_HOP + 1
        first = self._mel_offset + len(self._mel)
        if n_mel > first:
            start = first * MEL_HOP - self._padded_offset
            stop = (n_mel - 1) * MEL_HOP + N_FFT - self._padded_offset
            new = log_mel(self._padded[start:stop], center=False)
            self._mel = np.concatenate([self._mel, new[: n_mel - first]])
            # Keep an FFT of history before the next frame: the end reflection reads it.
            keep_from = max(0, n_mel * MEL_HOP - N_FFT - self._padded_offset)
            self._padded = self._padded[keep_from:]
            self._padded_offset += keep_from
        return n_mel if final else None

    # ------------------------------------------------------------------ mid-end
    def _compute_midend(self, n_mel: int | None) -> None:
        """Mid-end of every chunk whose right context has arrived (of the rest at the end)."""
        import torch

        available = self._mel_offset + len(self._mel)
        while self._next_mid < available:
            a = self._next_mid
            b = min(a + CHUNK_FRAMES, available)
            if n_mel is None and b + CONTEXT_FRAMES > available:
                return  # wait for the right context
            lo = max(0, a - CONTEXT_FRAMES)
            hi = b + CONTEXT_FRAMES if n_mel is None else min(n_mel, b + CONTEXT_FRAMES)
            x = torch.from_numpy(np.ascontiguousarray(self._mel[lo - self._mel_offset: hi - self._mel_offset]))
            with torch.inference_mode():
                mid = self.model.midend(x[None])[0].numpy()
            self._mid = np.concatenate([self._mid, mid[a - lo: b - lo]])
            self._next_mid = b
            # Mel frames left of the next chunk's context are no longer needed.
            drop = max(0, self._next_mid - CONTEXT_FRAMES - self._mel_offset)
            self._mel, self._mel_offset = self._mel[drop:], self._mel_offset + drop

    # ------------------------------------------------------------------ frames
    def _window(self, m: int, n_mel: int | None) -> tuple[int, int]:
        """Mel-frame span ``[start, stop)`` of frame ``m``'s window (clipped at the start)."""
        centre = round(m * self.config.hop / self.config.sample_rate * MEL_RATE)
        start = centre - self.window // 2
        stop = start + self.window
        start = max(0, start)
        if n_mel is not None:
            stop, start = min(stop, n_mel), min(start, max(0, n_mel - 1))
        return start, max(stop, start + 1)

    def _emit(self, n_frames: int | None, n_mel: int | None) -> np.ndarray:
        done = self._next_mid  # mid-end is known for mel frames [.., done)
        spans = []
        m = self._next_frame
        while n_frames is None or m < n_frames:
            start, stop = self._window(m, n_mel)
            if stop > done:
                break
            spans.append((start, stop))
            m += 1
        out = self._frames(spans)
        self._next_frame = m
        # Mid-end left of the next window's start is no longer needed.
        if n_frames is None or m < n_frames:
            # Never past what is computed: a window shorter than the hop starts beyond it.
            drop = max(0, min(self._window(m, n_mel)[0], self._next_mid) - self._mid_offset)
            self._mid, self._mid_offset = self._mid[drop:], self._mid_offset + drop
        return out

    def _frames(self, spans: list) -> np.ndarray:
        """The configured output for each mel span, batched by span length."""
        import torch

        out = np.zeros((len(spans), self.width), np.float32)
        by_length: dict = {}
        for i, (start, stop) in enumerate(spans):
            by_length.setdefault(stop - start, []).append(i)
        for length, idx in by_length.items():
            for k in range(0, len(idx), WINDOW_BATCH):
                batch = idx[k:k + WINDOW_BATCH]
                gathered = np.stack([self._mid[spans[i][0] - self._mid_offset: spans[i][1] - self._mid_offset]
                                     for i in batch])
                out[batch] = self._summarise(torch.from_numpy(gathered))
        return out

    def _summarise(self, windows) -> np.ndarray:
        import torch

        kind = self.config.musicnn_output
        if kind == "midend":
            return windows.mean(dim=1).numpy()
        with torch.inference_mode():
            logits, penultimate = self.model.backend(windows)
        return (penultimate if kind == "penultimate" else torch.sigmoid(logits)).numpy()


def iter_musicnn_features(blocks, config):
    """musicnn frames of a signal arriving in 22050-Hz blocks (see :class:`MusicnnFrameStream`)."""
    from ...streaming import iter_stream

    return iter_stream(MusicnnFrameStream(config), blocks)
