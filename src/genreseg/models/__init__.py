"""Frame classifiers: a DNN on single frames and an LSTM over sequences.

>>> from genreseg.models import default_preset, train_frame_model, frame_posteriors
>>> model = train_frame_model(train_seqs, train_labels, n_classes, default_preset("lstm"))
>>> post = frame_posteriors(model, test_seqs)      # list of (T_i, C) softmax arrays
>>> arrays, meta = model.state_arrays(), model.metadata()   # safetensors + JSON, no pickle

Modules: :mod:`~genreseg.models.config` (``FrameModelConfig``, the presets),
:mod:`~genreseg.models.dnn` and :mod:`~genreseg.models.lstm` (the networks),
:mod:`~genreseg.models.state` (normaliser, ``TrainedFrameModel``, state arrays),
:mod:`~genreseg.models.training` (the training loop and its recipe) and
:mod:`~genreseg.models.inference` (frame posteriors, whole or streamed).
"""

from .config import FrameModelConfig, default_preset, paper_preset
from .dnn import DNNFrameClassifier
from .inference import frame_posteriors, iter_frame_posteriors
from .lstm import LSTMFrameClassifier, PeepholeLSTM
from .state import (
    Normalizer,
    TrainedFrameModel,
    build_module,
    load_state_arrays,
    state_arrays,
)
from .training import frame_loss, train_frame_model

__all__ = [
    "DNNFrameClassifier",
    "FrameModelConfig",
    "LSTMFrameClassifier",
    "Normalizer",
    "PeepholeLSTM",
    "TrainedFrameModel",
    "build_module",
    "default_preset",
    "frame_loss",
    "frame_posteriors",
    "iter_frame_posteriors",
    "load_state_arrays",
    "paper_preset",
    "state_arrays",
    "train_frame_model",
]
