"""musicnn: pretrained music-tagging CNN features (a PyTorch port of musicnn 0.1.0).

>>> from genreseg.features.musicnn import load_musicnn, log_mel
>>> model = load_musicnn("MSD_musicnn")
>>> mel = torch.from_numpy(log_mel(audio_16k))   # (T, 96), 16 ms frames
>>> out = model(patches)                          # (B, 187, 96) 3-s patches -> taggram, penultimate
>>> mid = model.midend(mel[None])                 # (1, T, 753): fully convolutional in time

The paper's pipeline takes its musicnn frames from :mod:`.frames` (streamed, one every
scattering hop; ``FeatureConfig(family="musicnn")``).

Weights: musicnn by Jordi Pons (MTG-UPF), ISC licence, see ``weights/LICENSE-musicnn.txt``.
"""

from __future__ import annotations

from .labels import MSD_TAGS, MTT_TAGS, TAGS
from .mel import MEL_HOP, MUSICNN_SAMPLE_RATE, N_MELS, log_mel
from .model import MIDEND_DIM, MODEL_NAMES, PATCH_FRAMES, Musicnn, load_musicnn

__all__ = [
    "MEL_HOP",
    "MIDEND_DIM",
    "MODEL_NAMES",
    "MSD_TAGS",
    "MTT_TAGS",
    "MUSICNN_SAMPLE_RATE",
    "N_MELS",
    "PATCH_FRAMES",
    "TAGS",
    "Musicnn",
    "load_musicnn",
    "log_mel",
]
