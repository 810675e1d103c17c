"""musicnn: pretrained music-tagging CNN features (a PyTorch port of musicnn 0.1.0).

>>> from genreseg.features.musicnn import PATCH_FRAMES, log_mel, midend_of_long, windowed_outputs
>>> mel = log_mel(audio_16k)                      # (T, 96), 16 ms frames
>>> mid = midend_of_long(mel, model="MSD_musicnn")  # (T, 753) frame features
>>> taggram, penultimate = windowed_outputs(mid, PATCH_FRAMES, PATCH_FRAMES)

Weights: musicnn by Jordi Pons (MTG-UPF), ISC licence, see ``weights/LICENSE-musicnn.txt``.
"""

from __future__ import annotations

from .labels import MSD_TAGS, MTT_TAGS, TAGS
from .mel import MEL_HOP, MUSICNN_SAMPLE_RATE, N_MELS, log_mel
from .model import MIDEND_DIM, MODEL_NAMES, PATCH_FRAMES, Musicnn, load_musicnn
from .tracks import midend_of_long, windowed_outputs

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
    "midend_of_long",
    "windowed_outputs",
]
