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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GenresegError, ModelError
from .evaluation import EvaluationResult, evaluate
from .features import FeatureConfig
from .models import FrameModelConfig, TrainedFrameModel, default_preset, frame_posteriors, paper_preset
from .segments import (SegmentClassifier, SegmentConfig, SegmentModels, fit_segment_models,
                       initial_segment_features, segment_features)
from .files import atomic_write_bytes, atomic_write_json
from .runtime import library_versions
from .store import FeatureSet

MODEL_FORMAT = "genreseg-model/1"
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"


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

    def to_dict(self, timeline: bool = False) -> dict:
        d = {"path": self.path, "genre": self.genre, "probabilities": self.probabilities, "duration": self.duration}
        if self.error:
            d["error"] = self.error
        if timeline and self.frame_posteriors is not None:
            d["timeline"] = [{"time": round(float(t), 3), **{k: round(float(p), 5) for k, p in zip(
                self.probabilities, row)}} for t, row in zip(self.frame_times, self.frame_posteriors)]
        return d


class GenreClassifier:
    """Frame model + LSTM segment features + fused segment classifier.

    Parameters
    ----------
    frame_config : FrameModelConfig, optional
        Default: :func:`genreseg.models.default_preset` of ``kind``.
    segment_config : SegmentConfig, optional
    kind : {"lstm", "dnn"}
        Used when ``frame_config`` is not given.
    progress : bool
        Progress bars while training.
    """

    def __init__(self, frame_config: FrameModelConfig | None = None, segment_config: SegmentConfig | None = None,
                 kind: str = "lstm", progress: bool = False):
        self.frame_config = frame_config or default_preset(kind)
        self.segment_config = segment_config or SegmentConfig()
        self.progress = progress

    # ------------------------------------------------------------------ fitting
    def fit(self, features: FeatureSet) -> "GenreClassifier":
        """Train on a :class:`~genreseg.store.FeatureSet` (e.g. ``FeatureStore(...).load()``)."""
        if any(lab < 0 for lab in features.labels):
            raise GenresegError("every training track needs a label")
        counts = np.bincount(features.labels, minlength=len(features.label_names))
        present = counts > 0
        if present.sum() < 2:
            raise GenresegError("training needs at least two labels with tracks")
        t0 = time.perf_counter()
        self.label_names_ = list(features.label_names)
        self.feature_config_ = features.config
        self.channels_ = {k: np.asarray(v) for k, v in features.channels.items()}
        self.models_ = fit_segment_models(features.sequences, features.labels, len(self.label_names_),
                                          self.frame_config, self.segment_config, progress=self.progress)
        self.training_ = {
            "n_tracks": len(features.sequences),
            "n_frames": int(sum(len(s) for s in features.sequences)),
            "tracks_per_label": {n: int(c) for n, c in zip(self.label_names_, counts)},
            "track_ids": list(features.track_ids),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise GenresegError("GenreClassifier is not fitted: call fit() or GenreClassifier.load()")

    def check_features(self, config: FeatureConfig, n_features: int | None = None, where: str = "features") -> None:
        """Raise :class:`ModelError` when features of ``config`` cannot feed this model."""
        self._check_fitted()
        if config.hash != self.feature_config_.hash:
            ours, theirs = self.feature_config_.feature_dict(), config.feature_dict()
            diff = ", ".join(f"{k}={theirs[k]} (model: {ours[k]})" for k in ours if ours[k] != theirs.get(k))
            raise ModelError(f"{where}: feature config {config.hash} does not match the model's "
                             f"{self.feature_config_.hash} ({diff})")
        n_in = self.models_.frame_model.n_in
        if n_features is not None and n_features != n_in:
            raise ModelError(f"{where}: {n_features} features per frame, the model expects {n_in}")

    # ------------------------------------------------------------------ prediction
    def predict_frames(self, sequences) -> list:
        """Per-frame class posteriors ``(T_i, C)`` of each track."""
        self._check_fitted()
        return frame_posteriors(self.models_.frame_model, sequences)

    def _stages(self, sequences) -> dict:
        post = self.predict_frames(sequences)
        stats = segment_features(post, self.models_.config.k)
        init = initial_segment_features(sequences)
        return {"posteriors": post, "stats": stats, "init": init}

    def _full_proba(self, clf: SegmentClassifier, proba: np.ndarray) -> np.ndarray:
        # A label absent from training has no column in the segment classifier: give it 0.
        out = np.zeros((len(proba), len(self.label_names_)))
        out[:, np.asarray(clf.classes_, dtype=int)] = proba
        return out

    def predict_proba(self, sequences) -> np.ndarray:
        """Fused-classifier class probabilities ``(n_tracks, n_labels)``, columns in ``label_names_``."""
        s = self._stages(sequences)
        return self._full_proba(self.models_.fseg, self.models_.fseg.predict_proba(s["stats"], initial=s["init"]))

    def predict(self, sequences) -> list:
        """Genre name of each track (fused classifier)."""
        s = self._stages(sequences)
        return [self.label_names_[int(i)] for i in self.models_.fseg.predict(s["stats"], initial=s["init"])]

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
        lseg = self.models_.lseg.predict(s["stats"])
        fseg = self.models_.fseg.predict(s["stats"], initial=s["init"])
        return evaluate(features.labels, s["posteriors"], self.label_names_, lseg_pred=lseg, fseg_pred=fseg,
                        track_ids=features.track_ids)

    def predict_files(self, paths, timeline: bool = False, progress: bool = False,
                      max_duration: float | None = None) -> list:
        """Predict audio files that need not be in any store; bad files are reported, not raised.

        ``max_duration`` (seconds) refuses longer files as an error of that file.

        Returns
        -------
        list of TrackPrediction
            In the order of ``paths``; a file that could not be read has ``error`` set.
        """
        from .features import compute_features_from_file

        self._check_fitted()
        config = self.feature_config_
        out = []
        for path in paths:
            try:
                feats = compute_features_from_file(path, config, max_duration=max_duration)
                self.check_features(feats.config, feats.data.shape[1], str(path))
                s = self._stages([feats.data])
                proba = self._full_proba(self.models_.fseg,
                                         self.models_.fseg.predict_proba(s["stats"], initial=s["init"]))[0]
                genre = self.label_names_[int(self.models_.fseg.predict(s["stats"], initial=s["init"])[0])]
                out.append(TrackPrediction(
                    path=str(path), genre=genre, duration=feats.info["duration"],
                    probabilities={n: float(p) for n, p in zip(self.label_names_, proba)},
                    frame_times=feats.times if timeline else None,
                    frame_posteriors=s["posteriors"][0] if timeline else None))
            except GenresegError as err:
                out.append(TrackPrediction(path=str(path), error=str(err)))
        return out

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
        from .timeline import Timeline, TimelineConfig, decode_segments, file_posteriors

        self._check_fitted()
        config = config or TimelineConfig()
        times, post, duration = file_posteriors(path, self.models_.frame_model, self.feature_config_, progress,
                                                config.window_frames(self.feature_config_.hop_seconds))
        return Timeline(path=str(path), duration_s=duration, times=times, posteriors=post,
                        label_names=list(self.label_names_),
                        segments=decode_segments(post, times, self.label_names_, config, duration),
                        config=config, info={"frame_model": self.frame_config.kind})

    # ------------------------------------------------------------------ persistence
    def save(self, directory) -> Path:
        """Write the model directory (atomic per file; weights first, then model.json)."""
        from safetensors.numpy import save as st_save

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"frame.{k}": np.ascontiguousarray(v) for k, v in self.models_.frame_model.state_arrays().items()}
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
            "feature_config": self.feature_config_.to_dict(),
            "feature_hash": self.feature_config_.hash,
            "channels": {k: [None if isinstance(x, float) and np.isnan(x) else x for x in np.asarray(v).tolist()]
                         for k, v in self.channels_.items()},
            "frame_model": self.models_.frame_model.metadata(),
            "segment_config": self.segment_config.to_dict(),
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
            feature_config = FeatureConfig.from_dict(meta["feature_config"])
            if feature_config.hash != meta["feature_hash"]:
                raise ModelError(f"{meta_path}: feature config does not match its recorded hash (edited?)")
            frame_model = TrainedFrameModel.from_state(
                {k[len("frame."):]: v for k, v in arrays.items() if k.startswith("frame.")},
                meta["frame_model"], device=device)
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
        clf.feature_config_ = feature_config
        clf.channels_ = {k: np.asarray([np.nan if x is None else x for x in v]) for k, v in meta["channels"].items()}
        clf.models_ = SegmentModels(frame_model=frame_model, lseg=segs["lseg"], fseg=segs["fseg"], config=seg_config)
        clf.training_ = meta.get("training", {})
        clf.meta_ = meta
        return clf


def _relabel(features: FeatureSet, label_names: list) -> FeatureSet:
    index = {n: i for i, n in enumerate(label_names)}
    labels = np.array([index.get(r.get("label"), -1) for r in features.rows], dtype=np.int64)
    return FeatureSet(rows=features.rows, sequences=features.sequences, labels=labels, label_names=list(label_names),
                      channels=features.channels, config=features.config)
