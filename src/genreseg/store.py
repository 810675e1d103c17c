"""Feature store: frame features cached on disk, one entry per (audio content, feature config).

Layout of a store directory::

    STORE/
      store.json       format version, feature config and its hash (one config per store)
      manifest.jsonl   one JSON row per track: track_id, path, label, split, artist, key,
                       duration, n_frames (append-only; a row replaces an earlier row of
                       the same track_id and the same path or key, see FeatureStore.rows)
      problems.json    files the last extraction failed on or passed over, with reasons
      entries/         <content-hash>-<config-hash>.npz, self-describing: the frames, the
                       per-channel metadata and a JSON provenance record
      tmp/             writes in progress

Writes are atomic (write to ``tmp/``, fsync, ``os.replace``), so a run killed at any
moment leaves either a whole entry or none. The manifest is appended by a single
writer (the extraction driver) after each entry lands; a torn last line is skipped on
reading, and a rerun re-adds rows for entries that exist without recomputing them.
Entries are ``.npz`` read with ``allow_pickle=False``: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .errors import StoreError
from .features import FeatureConfig, FrameFeatures
from .files import atomic_write_bytes, atomic_write_json

STORE_FORMAT = "genreseg-store/1"
CHANNEL_FIELDS = ("order", "xi1_hz", "xi2_hz", "n1", "n2")


def entry_key(content_hash: str, config: FeatureConfig) -> str:
    """Store key of a file's features: its content hash and the feature-config hash."""
    return f"{content_hash}-{config.hash}"


@dataclass
class FeatureSet:
    """Features of a list of tracks, ready for training.

    Attributes
    ----------
    rows : list of dict
        Manifest rows, in order.
    sequences : list of np.ndarray
        ``(n_frames_i, n_features)`` float32 per track.
    labels : np.ndarray of int
        Index into ``label_names`` (-1 for unlabelled rows).
    label_names : list of str
        Sorted label set.
    channels : dict
        Per-feature-column metadata (shared by all tracks).
    config : FeatureConfig
    """

    rows: list
    sequences: list
    labels: np.ndarray
    label_names: list
    channels: dict
    config: FeatureConfig

    @property
    def track_ids(self) -> list:
        return [r["track_id"] for r in self.rows]

    @property
    def n_features(self) -> int:
        return self.sequences[0].shape[1] if self.sequences else 0

    def subset(self, indices) -> "FeatureSet":
        idx = [int(i) for i in indices]
        return FeatureSet(rows=[self.rows[i] for i in idx], sequences=[self.sequences[i] for i in idx],
                          labels=self.labels[idx], label_names=self.label_names, channels=self.channels,
                          config=self.config)



@dataclass
class FeatureStore:
    """A directory of cached frame features for one :class:`FeatureConfig`.

    Parameters
    ----------
    root : path
    config : FeatureConfig, optional
        Required to create a store; when opening an existing one it must match (by hash).
    """

    root: Path
    config: FeatureConfig | None = None
    _rows_cache: list | None = field(default=None, repr=False)

    def __post_init__(self):
        self.root = Path(self.root)
        meta_path = self.root / "store.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                stored = FeatureConfig.from_dict(meta["feature_config"])
            except (ValueError, KeyError, TypeError) as err:
                raise StoreError(f"{meta_path}: not a genreseg store description ({err})") from None
            if meta.get("format") != STORE_FORMAT:
                raise StoreError(f"{meta_path}: unsupported store format {meta.get('format')!r}")
            if self.config is not None and self.config.family != stored.family:
                raise StoreError(f"{self.root}: store holds {stored.describe()} features, not "
                                 f"{self.config.describe()}; use another store directory for another family")
            if self.config is not None and self.config.hash != stored.hash:
                raise StoreError(
                    f"{self.root}: store holds features of config {stored.hash}, not {self.config.hash}; "
                    f"use another store directory for other feature settings")
            # Execution settings (backend, windows) may differ from the store's: keep the caller's.
            self.config = self.config or stored
        elif self.config is None:
            raise StoreError(f"{self.root}: no feature store here (missing store.json); run 'genreseg extract' first")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(meta_path, {"format": STORE_FORMAT, "feature_config": self.config.to_dict(),
                                          "feature_hash": self.config.hash, "genreseg_version": __version__,
                                          "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self.entries_dir.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- paths
    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.jsonl"

    @property
    def problems_path(self) -> Path:
        return self.root / "problems.json"

    def entry_path(self, key: str) -> Path:
        return self.entries_dir / f"{key}.npz"

    def key_for(self, content_hash: str) -> str:
        return entry_key(content_hash, self.config)

    def has(self, key: str) -> bool:
        return self.entry_path(key).exists()

    def clean_tmp(self) -> int:
        """Remove partial writes left by a killed run. Returns how many were removed."""
        if not self.tmp_dir.exists():
            return 0
        stale = list(self.tmp_dir.iterdir())
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    # ---------------------------------------------------------------- entries
    def write(self, key: str, features: FrameFeatures) -> None:
        """Store ``features`` under ``key`` atomically."""
        import io

        info = dict(features.info, feature_hash=features.config.hash,
                    feature_config=features.config.feature_dict(), shape=list(features.data.shape))
        arrays = {"data": np.ascontiguousarray(features.data, dtype=np.float32),
                  "info_json": np.array(json.dumps(info, sort_keys=True))}
        for name in CHANNEL_FIELDS:
            arrays[f"channel_{name}"] = np.asarray(features.channels[name])
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.entry_path(key), buf.getvalue(), self.tmp_dir)

    def read(self, key: str) -> FrameFeatures:
        """Load one entry; checks that it was computed under this store's config."""
        path = self.entry_path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = z["data"]
                info = json.loads(str(z["info_json"]))
                channels = {name: z[f"channel_{name}"] for name in CHANNEL_FIELDS}
        except FileNotFoundError:
            raise StoreError(f"{path}: entry missing from store") from None
        except (OSError, ValueError, KeyError) as err:
            raise StoreError(f"{path}: corrupt store entry ({err})") from None
        if info.get("feature_hash") != self.config.hash:
            raise StoreError(f"{path}: entry has feature config {info.get('feature_hash')}, "
                             f"store has {self.config.hash}")
        return FrameFeatures(data=data, channels=channels, config=self.config, info=info)

    # ---------------------------------------------------------------- manifest
    def append_rows(self, rows) -> None:
        """Append manifest rows (single writer). Each line is flushed and fsynced."""
        with open(self.manifest_path, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._rows_cache = None

    def rows(self) -> list:
        """Manifest rows whose entry exists, sorted by track_id (then path).

        A track is its ``track_id`` and its file: a later row replaces an earlier one of
        the same ``track_id`` when it has the same ``path`` (a rerun, or the file changed)
        or the same ``key`` (the same audio, the dataset moved). Two datasets sharing
        one store can hold the same relative ``track_id`` (``blues/a.wav`` under two
        roots) for different audio: both rows are kept.
        """
        if self._rows_cache is not None:
            return list(self._rows_cache)
        latest: dict = {}  # track_id -> rows of that id, each a different path and key
        if self.manifest_path.exists():
            with open(self.manifest_path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line torn by a kill mid-write
                    if isinstance(row, dict) and "track_id" in row and "key" in row:
                        same_id = latest.setdefault(row["track_id"], [])
                        same_id[:] = [r for r in same_id
                                      if r.get("path") != row.get("path") and r["key"] != row["key"]]
                        same_id.append(row)
        rows = sorted((r for same_id in latest.values() for r in same_id if self.has(r["key"])),
                      key=lambda r: (r["track_id"], str(r.get("path"))))
        self._rows_cache = rows
        return list(rows)

    def compact(self) -> None:
        """Rewrite the manifest with one row per track (atomically)."""
        rows = self.rows()
        payload = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
        atomic_write_bytes(self.manifest_path, payload, self.tmp_dir)

    def write_problems(self, failed, skipped) -> None:
        """Record the files the last extraction could not use, with their reasons.

        Each run replaces the list: a file fixed since is no longer a problem.
        """
        problems = ([{"path": str(p), "reason": r, "kind": "failed"} for p, r in failed]
                    + [{"path": str(p), "reason": r, "kind": "skipped"} for p, r in skipped])
        atomic_write_json(self.problems_path, {"problems": problems,
                                               "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, self.tmp_dir)

    def problems(self) -> list:
        """Files the last extraction failed on or passed over: dicts of path, reason, kind."""
        try:
            return json.loads(self.problems_path.read_text()).get("problems", [])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, AttributeError) as err:
            raise StoreError(f"{self.problems_path}: unreadable ({err})") from None

    # ---------------------------------------------------------------- bulk
    def load(self, rows=None, label_names=None) -> FeatureSet:
        """Load the features of ``rows`` (default: every track in the manifest).

        Parameters
        ----------
        rows : list of dict, optional
        label_names : list of str, optional
            Label order to use (e.g. a trained model's). Default: sorted labels of ``rows``.
        """
        rows = self.rows() if rows is None else list(rows)
        if not rows:
            raise StoreError(f"{self.root}: the store has no tracks")
        if label_names is None:
            label_names = sorted({r["label"] for r in rows if r.get("label") is not None})
        index = {name: i for i, name in enumerate(label_names)}
        sequences, labels, channels = [], [], None
        for r in rows:
            feats = self.read(r["key"])
            sequences.append(feats.data)
            channels = channels or feats.channels
            labels.append(index.get(r.get("label"), -1))
        return FeatureSet(rows=rows, sequences=sequences, labels=np.asarray(labels, dtype=np.int64),
                          label_names=list(label_names), channels=channels, config=self.config)

    def summary(self) -> dict:
        """Counts, durations and config of the store, for ``genreseg info``."""
        rows = self.rows()
        per_label: dict = {}
        for r in rows:
            lab = r.get("label") or "(unlabelled)"
            per_label[lab] = per_label.get(lab, 0) + 1
        n_features = None
        if rows:
            n_features = self.read(rows[0]["key"]).data.shape[1]
        return {
            "store": str(self.root),
            "feature_hash": self.config.hash,
            "feature_config": self.config.feature_dict(),
            "tracks": len(rows),
            "entries": sum(1 for _ in self.entries_dir.glob("*.npz")),
            "labels": dict(sorted(per_label.items())),
            "total_duration_s": round(sum(r.get("duration", 0.0) for r in rows), 2),
            "total_frames": int(sum(r.get("n_frames", 0) for r in rows)),
            "n_features": n_features,
            "splits": sorted({r["split"] for r in rows if r.get("split")}),
            "problems": self.problems(),
        }
