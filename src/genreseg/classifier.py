"""GenreClassifier: the whole method behind a scikit-learn-style interface.

>>> from genreseg import GenreClassifier
>>> from genreseg.store import FeatureStore
>>> train = FeatureStore("store").load()
>>> clf = GenreClassifier(kind="lstm").fit(train)
>>> clf.predict_files(["song.mp3"])            # extracts features on the fly
>>> clf.save("model"); GenreClassifier.load("model")

A fitted classifier holds the frame model (DNN or LSTM), the LSeg classifier (LSTM
segment statistics) and the FSeg classifier (statistics fused with the track mean
of the scattering frames). ``predict`` / ``predict_proba`` use the fused classifier.

Model directory (data, never code: nothing is pickled or unpickled)::

    MODEL/
      model.json            labels, feature config + hash, frame-model and segment
                            configs, normaliser shape, training summary, versions, and
                            the SHA-256 of the weights file
      weights.safetensors   frame-model weights and normaliser, and the segment
                            classifiers' training matrices (they are re-fitted on load,
                            deterministically; see genreseg.segments)
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from .errors import GenresegError, ModelError, TrainingDataError
from .evaluation import EvaluationResult, evaluate
from .features import FeatureConfig
from .files import atomic_write_bytes, atomic_write_json
from .models import FrameModelConfig, TrainedFrameModel, default_preset, frame_posteriors, paper_preset
from .runtime import library_versions, torch_threads
from .segments import SegmentClassifier, SegmentConfig, SegmentModels, fit_segment_models, segment_inputs
from .store import FeatureSet

MODEL_FORMAT = "genreseg-model/1"
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
#: Libraries whose version can change a loaded model's numbers (compared on load).
NUMERIC_LIBRARIES = ("genreseg", "numpy", "torch", "scikit-learn", "scipy")


class VersionMismatchWarning(UserWarning):
    """A model was saved by other versions of the libraries that compute its numbers."""


def make_frame_config(kind: str = "lstm", hidden=None, preset: str = "default", **overrides) -> FrameModelConfig:
    """A frame-model config from a preset name ("default" or "paper") plus overrides."""
    if preset not in ("default", "paper"):
        raise ValueError(f"preset must be 'default' or 'paper', got {preset!r}")
    base = (paper_preset if preset == "paper" else default_preset)(kind, tuple(hidden) if hidden else None)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.replace(**changes) if changes else base


@dataclass
class TrackPrediction:
    """Prediction of one track (or the reason it could not be made)."""

    path: str
    genre: str | None = None
    probabilities: dict | None = None
    frame_times: np.ndarray | None = None
    frame_posteriors: np.ndarray | None = None
    error: str | None = None
    duration: float | None = None  # seconds of audio analysed
    tags: dict | None = None  # a pretrained tagger's probability of each of its tags

    def to_dict(self, timeline: bool = False) -> dict:
        d = {"path": self.path, "genre": self.genre, "probabilities": self.probabilities, "duration": self.duration}
        if self.tags is not None:
            d["tags"] = self.tags
        if self.error:
            d["error"] = self.error
        if timeline and self.frame_posteriors is not None:
            d["timeline"] = [{"time": round(float(t), 3), **{k: round(float(p), 5) for k, p in zip(
                self.probabilities, row)}} for t, row in zip(self.frame_times, self.frame_posteriors)]
        return d


class GenreClassifier(ClassifierMixin, BaseEstimator):
    """Frame model + LSTM segment features + fused segment classifier, as a scikit-learn classifier.

    Parameters are stored as given (``None`` stays ``None``); :meth:`fit` resolves them,
    so ``sklearn.base.clone``, ``get_params``/``set_params`` and ``GridSearchCV`` work.

    Parameters
    ----------
    frame_config : FrameModelConfig, optional
        The frame model. ``None``: :func:`genreseg.models.default_preset` of ``kind``.
    segment_config : SegmentConfig, optional
        The segment stage. ``None``: ``SegmentConfig()``.
    kind : {"lstm", "dnn"}
        The frame model when ``frame_config`` is ``None``.
    n_threads : int or None
        torch intra-op threads while fitting and predicting (restored after). Default 1:
        these small networks run several times faster on one thread than on torch's
        default of one per core, which spends the difference synchronising (measured 5x
        on a shared 2-core machine, ``benchmarks/segment_choices.py``). ``None`` leaves
        torch's setting alone.
    progress : bool
        Progress bars while training.

    Attributes
    ----------
    classes_ : np.ndarray of str
        The genre labels, the columns of :meth:`predict_proba`.
    label_names_ : list of str
        The same, as a list.
    n_features_in_ : int
        Features per frame.
    feature_config_ : FeatureConfig or None
        The features the model was trained on (``None`` when fitted on bare arrays).
    models_ : genreseg.segments.SegmentModels
    training_ : dict
        A summary of the training data and time.

    Examples
    --------
    >>> clf = GenreClassifier(kind="lstm").fit(FeatureStore("store").load())
    >>> clf = GenreClassifier().fit([frames_a, frames_b, ...], ["jazz", "rock", ...])
    >>> clf.predict(test_sequences); clf.score(test_features)
    """

    def __init__(self, frame_config: FrameModelConfig | None = None, segment_config: SegmentConfig | None = None,
                 kind: str = "lstm", n_threads: int | None = 1, progress: bool = False):
        self.frame_config = frame_config
        self.segment_config = segment_config
        self.kind = kind
        self.n_threads = n_threads
        self.progress = progress

    # ------------------------------------------------------------------ parameters
    def resolved_frame_config(self) -> FrameModelConfig:
        """``frame_config``, or the default preset of ``kind``."""
        return self.frame_config if self.frame_config is not None else default_preset(self.kind)

    def resolved_segment_config(self) -> SegmentConfig:
        """``segment_config``, or ``SegmentConfig()``."""
        return self.segment_config if self.segment_config is not None else SegmentConfig()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Tracks are variable-length frame sequences, not rows of a table.
        tags.input_tags.two_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, *, feature_config: FeatureConfig | None = None) -> "GenreClassifier":
        """Train the frame model and the segment classifiers.

        Parameters
        ----------
        X : FeatureSet, or sequence of array-like, each ``(n_frames_i, n_features)``
            A :class:`~genreseg.store.FeatureSet` (``FeatureStore(...).load()``) carries its
            labels, feature config and channel metadata; otherwise one frame matrix per
            track (a 2-D array is read as one frame per track, as scikit-learn passes
            tables).
        y : array-like of str or int, shape (n_tracks,)
            The tracks' labels; only with bare arrays (a FeatureSet has its own).
        feature_config : FeatureConfig, optional
            With bare arrays: the config that computed them, which :meth:`predict_files`
            and :meth:`segment` need.
        """
        features, classes = _as_training_set(X, y, feature_config)
        counts = np.bincount(features.labels, minlength=len(features.label_names))
        if (counts > 0).sum() < 2:
            raise TrainingDataError(f"training needs at least two classes with tracks, got {(counts > 0).sum()} "
                                    f"class ({', '.join(n for n, c in zip(features.label_names, counts) if c)})")
        frame_config, segment_config = self.resolved_frame_config(), self.resolved_segment_config()
        t0 = time.perf_counter()
        with torch_threads(self.n_threads):
            models = fit_segment_models(features.sequences, features.labels, len(features.label_names),
                                        frame_config, segment_config, progress=self.progress)
        self.label_names_ = list(features.label_names)
        self.classes_ = classes
        self.n_features_in_ = int(features.n_features)
        self.feature_config_ = features.config
        self.channels_ = {k: np.asarray(v) for k, v in features.channels.items()}
        self.models_ = models
        self.training_ = {
            "n_tracks": len(features.sequences),
            "n_frames": int(sum(len(s) for s in features.sequences)),
            "tracks_per_label": {n: int(c) for n, c in zip(self.label_names_, counts)},
            "track_ids": list(features.track_ids),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        return self

    def _check_fitted(self) -> None:
        check_is_fitted(self, "models_", msg="This GenreClassifier is not fitted yet: call fit() or "
                                             "GenreClassifier.load() first.")

    def check_features(self, config: FeatureConfig, n_features: int | None = None, where: str = "features") -> None:
        """Raise :class:`ModelError` when features of ``config`` cannot feed this model."""
        self._check_fitted()
        if self.feature_config_ is not None and config.hash != self.feature_config_.hash:
            if config.family != self.feature_config_.family:
                raise ModelError(f"{where}: holds {config.describe()} features, but the model was trained on "
                                 f"{self.feature_config_.describe()}; extract with --features "
                                 f"{self.feature_config_.family} for this model")
            ours, theirs = self.feature_config_.feature_dict(), config.feature_dict()
            diff = ", ".join(f"{k}={theirs[k]} (model: {ours[k]})" for k in ours if ours[k] != theirs.get(k))
            raise ModelError(f"{where}: feature config {config.hash} does not match the model's "
                             f"{self.feature_config_.hash} ({diff})")
        n_in = self.models_.frame_model.n_in
        if n_features is not None and n_features != n_in:
            raise ModelError(f"{where}: {n_features} features per frame, the model expects {n_in}")

    # ------------------------------------------------------------------ prediction
    def _sequences(self, X) -> list:
        self._check_fitted()
        if isinstance(X, FeatureSet):
            self.check_features(X.config, X.n_features, "features")
            return X.sequences
        sequences = _as_sequences(X)
        if sequences[0].shape[1] != self.n_features_in_:
            raise ValueError(f"X has {sequences[0].shape[1]} features, but GenreClassifier is expecting "
                             f"{self.n_features_in_} features as input (features per frame)")
        return sequences

    def predict_frames(self, X) -> list:
        """Per-frame class posteriors ``(T_i, C)`` of each track."""
        sequences = self._sequences(X)
        with torch_threads(self.n_threads):
            return frame_posteriors(self.models_.frame_model, sequences)

    def _stages(self, sequences) -> dict:
        with torch_threads(self.n_threads):
            return segment_inputs(self.models_, sequences)

    def _fused_proba(self, stages: dict) -> np.ndarray:
        clf = self.models_.fseg
        proba = clf.predict_proba(stages["fseg_stats"], initial=stages["init"])
        # A label absent from training has no column in the segment classifier: give it 0.
        out = np.zeros((len(proba), len(self.label_names_)))
        out[:, np.asarray(clf.classes_, dtype=int)] = proba
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Fused-classifier class probabilities ``(n_tracks, n_labels)``, columns in ``classes_``."""
        return self._fused_proba(self._stages(self._sequences(X)))

    def predict(self, X) -> np.ndarray:
        """Genre of each track: the argmax of :meth:`predict_proba`."""
        proba = self.predict_proba(X)  # checks fitted first
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y=None, sample_weight=None) -> float:
        """Accuracy of :meth:`predict` (FSeg_acc); a FeatureSet brings its own labels."""
        if isinstance(X, FeatureSet) and y is None:
            y = [r.get("label") for r in X.rows]
        return super().score(X, y, sample_weight=sample_weight)

    def evaluate(self, features: FeatureSet) -> EvaluationResult:
        """Frame_acc, Seg_acc, LSeg_acc and FSeg_acc on labelled features."""
        self.check_features(features.config, features.n_features, "evaluation features")
        if list(features.label_names) != self.label_names_:
            features = _relabel(features, self.label_names_)
        keep = features.labels >= 0
        if not keep.all():
            unknown = sorted({r.get("label") for r, k in zip(features.rows, keep) if not k})
            raise ModelError(f"labels {unknown} are not among the model's labels {self.label_names_}")
        s = self._stages(features.sequences)
        lseg = self.models_.lseg.predict(s["lseg_stats"])
        fseg = self.models_.fseg.predict(s["fseg_stats"], initial=s["init"])
        return evaluate(features.labels, s["frame_posteriors"], self.label_names_, lseg_pred=lseg, fseg_pred=fseg,
                        track_ids=features.track_ids)

    def predict_files(self, paths, timeline: bool = False, progress: bool = False,
                      max_duration: float | None = None) -> list:
        """Predict audio files that need not be in any store; bad files are reported, not raised.

        Each file goes once through :func:`genreseg.pipeline.analyse_file`: decoded,
        transformed and classified as a stream.

        Parameters
        ----------
        paths : iterable of str or Path
        timeline : bool
            Keep each file's frame times and the frame model's per-frame posteriors.
        progress : bool
            A progress bar per file, in seconds of audio.
        max_duration : float, optional
            Refuse longer files (seconds) as an error of that file.

        Returns
        -------
        list of TrackPrediction
            In the order of ``paths``; a file that could not be read has ``error`` set.
        """
        return predict_files(self, paths, timeline=timeline, progress=progress, max_duration=max_duration)

    def segment(self, path, config=None, progress: bool = False):
        """Genre timeline of one recording of any length (DJ mix, radio, concert).

        Parameters
        ----------
        path : str or Path
            An audio file; decoded, transformed and classified as a stream (bounded
            memory, however long).
        config : genreseg.timeline.TimelineConfig, optional
            Decoder settings (switch penalty, minimum segment duration).
        progress : bool
            A progress bar in seconds of audio.

        Returns
        -------
        genreseg.timeline.Timeline
            Frame times and posteriors, and the decoded segments.

        Raises
        ------
        genreseg.errors.AudioError
            The file cannot be used (one line naming it and the reason).
        """
        return segment_file(self, path, config, progress)

    def file_analyser(self, decide: bool = True, timeline_window_frames: int | None = None):
        """The last stage of :func:`genreseg.pipeline.analyse_file` for this model: push a
        file's frame chunks, then ``finish()`` gives its decision and posteriors."""
        from .segments.stream import TrackStream

        self._check_fitted()
        return _ThreadedStream(TrackStream(self.models_, self._fused_proba if decide else None,
                                           timeline_window_frames), self.n_threads)

    # ------------------------------------------------------------------ persistence
    def save(self, directory) -> Path:
        """Write the model directory (atomic per file; weights first, then model.json)."""
        from safetensors.numpy import save as st_save

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"frame.{k}": np.ascontiguousarray(v) for k, v in self.models_.frame_model.state_arrays().items()}
        for i, inner in enumerate(self.models_.inner_models):  # kept when test_posteriors reads them
            arrays.update({f"inner{i}.{k}": np.ascontiguousarray(v) for k, v in inner.state_arrays().items()})
        seg_meta = {}
        for name in ("lseg", "fseg"):
            a, m = getattr(self.models_, name).state()
            arrays.update({f"{name}.{k}": np.ascontiguousarray(v) for k, v in a.items()})
            seg_meta[name] = m
        payload = st_save(arrays)
        atomic_write_bytes(directory / WEIGHTS_FILE, payload)
        meta = {
            "format": MODEL_FORMAT,
            "label_names": self.label_names_,
            "feature_config": None if self.feature_config_ is None else self.feature_config_.to_dict(),
            "feature_hash": None if self.feature_config_ is None else self.feature_config_.hash,
            "channels": {k: [None if isinstance(x, float) and np.isnan(x) else x for x in np.asarray(v).tolist()]
                         for k, v in self.channels_.items()},
            "frame_model": self.models_.frame_model.metadata(),
            "inner_frame_models": [m.metadata() for m in self.models_.inner_models],
            "segment_config": self.models_.config.to_dict(),
            "segment_classifiers": seg_meta,
            "training": self.training_,
            "versions": library_versions(),
            "weights_sha256": hashlib.sha256(payload).hexdigest(),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_json(directory / META_FILE, meta)
        return directory

    @classmethod
    def load(cls, directory, device: str | None = None) -> "GenreClassifier":
        """Load a model directory written by :meth:`save`; verifies the weights' checksum."""
        from safetensors import SafetensorError
        from safetensors.numpy import load as st_load

        directory = Path(directory)
        meta_path, weights_path = directory / META_FILE, directory / WEIGHTS_FILE
        if not meta_path.exists() or not weights_path.exists():
            raise ModelError(f"{directory}: not a genreseg model (needs {META_FILE} and {WEIGHTS_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelError(f"{meta_path}: not valid JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
            raise ModelError(f"{meta_path}: unsupported model format {meta.get('format') if isinstance(meta, dict) else None!r}")
        payload = weights_path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta.get("weights_sha256"):
            raise ModelError(f"{weights_path}: checksum mismatch — the weights were modified or corrupted "
                             f"after the model was saved")
        try:
            arrays = st_load(payload)
            feature_config = (None if meta["feature_config"] is None
                              else FeatureConfig.from_dict(meta["feature_config"]))
            if feature_config is not None and feature_config.hash != meta["feature_hash"]:
                raise ModelError(f"{meta_path}: feature config does not match its recorded hash (edited?)")
            frame_model = TrainedFrameModel.from_state(
                {k[len("frame."):]: v for k, v in arrays.items() if k.startswith("frame.")},
                meta["frame_model"], device=device)
            inner = [TrainedFrameModel.from_state(
                {k[len(f"inner{i}."):]: v for k, v in arrays.items() if k.startswith(f"inner{i}.")}, m, device=device)
                for i, m in enumerate(meta.get("inner_frame_models", []))]
            segs = {name: SegmentClassifier.from_state(
                {k[len(name) + 1:]: v for k, v in arrays.items() if k.startswith(name + ".")},
                meta["segment_classifiers"][name]) for name in ("lseg", "fseg")}
            seg_config = SegmentConfig.from_dict(meta["segment_config"])
            label_names = list(meta["label_names"])
        except ModelError:
            raise
        except (KeyError, ValueError, TypeError, RuntimeError, SafetensorError) as err:
            raise ModelError(f"{directory}: model files are inconsistent ({type(err).__name__}: {err})") from None
        if frame_model.n_classes != len(label_names):
            raise ModelError(f"{meta_path}: {len(label_names)} labels but the frame model has "
                             f"{frame_model.n_classes} outputs")
        clf = cls(frame_config=frame_model.config, segment_config=seg_config)
        clf.label_names_ = label_names
        clf.classes_ = np.asarray(label_names)
        clf.n_features_in_ = int(frame_model.n_in)
        clf.feature_config_ = feature_config
        clf.channels_ = {k: np.asarray([np.nan if x is None else x for x in v]) for k, v in meta["channels"].items()}
        clf.models_ = SegmentModels(frame_model=frame_model, lseg=segs["lseg"], fseg=segs["fseg"], config=seg_config,
                                    inner_models=inner)
        clf.training_ = meta.get("training", {})
        clf.meta_ = meta
        _warn_on_version_mismatch(meta.get("versions", {}), directory)
        return clf


class _ThreadedStream:
    """A file analyser whose pushes run under the classifier's torch thread count."""

    def __init__(self, stream, n_threads):
        self.stream, self.n_threads = stream, n_threads

    def push(self, frames) -> None:
        with torch_threads(self.n_threads):
            self.stream.push(frames)

    def finish(self):
        with torch_threads(self.n_threads):
            return self.stream.finish()


def predict_files(model, paths, timeline: bool = False, progress: bool = False,
                  max_duration: float | None = None) -> list:
    """``model.predict_files``: one :func:`~genreseg.pipeline.analyse_file` per file, errors reported.

    Shared by :class:`GenreClassifier` and :class:`~genreseg.pretrained.PretrainedTagger`.
    """
    from .pipeline import analyse_file, file_feature_config

    file_feature_config(model)  # a model that cannot read audio files fails once, not per file
    out = []
    for path in paths:
        try:
            result = analyse_file(model, path, max_duration=max_duration, progress=progress)
            out.append(result.prediction(timeline=timeline))
        except GenresegError as err:
            out.append(TrackPrediction(path=str(path), error=str(err)))
    return out


def segment_file(model, path, config=None, progress: bool = False):
    """``model.segment``: the genre timeline of one recording, by :func:`~genreseg.pipeline.analyse_file`."""
    from .pipeline import analyse_file
    from .timeline import TimelineConfig

    return analyse_file(model, path, decide=False, segments=config or TimelineConfig(),
                        progress=progress).timeline()


def _warn_on_version_mismatch(saved: dict, where) -> None:
    """Warn when the libraries that determine a model's numbers differ from those that saved it."""
    installed = library_versions()
    differ = [f"{name} {saved[name]} (installed {installed[name]})" for name in NUMERIC_LIBRARIES
              if name in saved and name in installed and saved[name] != installed[name]]
    if differ:
        warnings.warn(f"{where}: saved with other library versions: {', '.join(differ)}; its predictions may "
                      f"differ slightly from those it gave when saved", VersionMismatchWarning, stacklevel=3)


def _is_sequence_list(X) -> bool:
    if isinstance(X, np.ndarray):
        return X.ndim == 3
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(np.ndim(x) == 2 for x in X)


def _as_sequences(X) -> list:
    """Per-track float32 frame matrices, validated as scikit-learn validates a table.

    A list of 2-D arrays (or a 3-D array) is one frame matrix per track; anything else
    is a table (``check_array``'s rules: no sparse, complex, empty, 1-D or non-finite
    input) read as one frame per track.
    """
    if _is_sequence_list(X):
        sequences = [check_array(x, dtype=np.float32, ensure_min_features=1, input_name=f"track {i}")
                     for i, x in enumerate(X)]
        widths = {x.shape[1] for x in sequences}
        if len(widths) > 1:
            raise ValueError(f"tracks differ in features per frame: {sorted(widths)}")
        return sequences
    table = check_array(X, dtype=np.float32)
    return [row[None, :] for row in table]


def _as_training_set(X, y, feature_config) -> tuple[FeatureSet, np.ndarray]:
    """A FeatureSet and the class values from ``fit``'s arguments (a FeatureSet passes through)."""
    if isinstance(X, FeatureSet):
        if y is not None:
            raise ValueError("a FeatureSet carries its own labels: call fit(features) without y")
        if any(lab < 0 for lab in X.labels):
            raise GenresegError("every training track needs a label")
        return X, np.asarray(X.label_names)
    if y is None:
        raise ValueError("GenreClassifier requires y to be passed, but the target y is None "
                         "(a FeatureSet carries its labels; bare arrays need y)")
    sequences = _as_sequences(X)
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"), warn=True)
    check_classification_targets(y)
    if len(y) != len(sequences):
        raise ValueError(f"y must hold one label per track: {len(sequences)} tracks, {len(y)} labels")
    classes, codes = np.unique(y, return_inverse=True)
    rows = [{"track_id": f"track-{i:05d}", "label": str(v)} for i, v in enumerate(y)]
    features = FeatureSet(rows=rows, sequences=sequences, labels=codes.astype(np.int64),
                          label_names=[str(c) for c in classes], channels={}, config=feature_config)
    return features, classes


def _relabel(features: FeatureSet, label_names: list) -> FeatureSet:
    index = {n: i for i, n in enumerate(label_names)}
    labels = np.array([index.get(r.get("label"), -1) for r in features.rows], dtype=np.int64)
    return FeatureSet(rows=features.rows, sequences=features.sequences, labels=labels, label_names=list(label_names),
                      channels=features.channels, config=features.config)
