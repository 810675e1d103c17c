"""genreseg: music genre classification with LSTM-RNN segment features.

Implements Dai, Liang, Xue, Ni & Liu, "LSTM-RNN based segment features for music
genre classification" (ISCSLP 2016) on second-order time-scattering frame features
(Andén & Mallat, "Deep scattering spectrum").

Pipeline modules, one per stage: :mod:`genreseg.audio` → :mod:`genreseg.features` →
:mod:`genreseg.store` / :mod:`genreseg.extract` → :mod:`genreseg.models` →
:mod:`genreseg.segments` → :mod:`genreseg.evaluation` → :mod:`genreseg.cli`.
"""

__version__ = "0.1.0"

from .errors import AudioError, DatasetError, GenresegError, ModelError, StoreError  # noqa: E402



def __getattr__(name):
    # Lazy: `import genreseg` stays light (no torch) until the classifier is used.
    if name == "GenreClassifier":
        from .classifier import GenreClassifier

        return GenreClassifier
    raise AttributeError(f"module 'genreseg' has no attribute {name!r}")


__all__ = ["__version__", "GenreClassifier", "AudioError", "DatasetError", "GenresegError", "ModelError", "StoreError"]
