"""Parallel feature extraction into a :class:`~genreseg.store.FeatureStore`, on Dask.

By default a local Dask cluster of ``workers`` processes (one thread each) runs
:func:`extract_one` per file; give ``scheduler="tcp://host:8786"`` to use an existing
cluster instead (its workers must see the audio and the store at the same paths,
e.g. on a shared filesystem). ``workers=0`` runs in this process without Dask, which
is what a notebook or :meth:`GenreClassifier.predict` on a few files wants.

Each worker builds the scattering backend once (it is cached per process) and
writes each entry atomically; the driver appends manifest rows as results arrive,
so a killed run loses at most the files in flight, and a rerun skips every file
whose entry exists (it only re-hashes the file).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .audio import SilentAudioWarning, content_hash
from .errors import GenresegError
from .features import FeatureConfig, compute_features_from_file
from .runtime import usable_cpus
from .store import FeatureStore


@dataclass
class ExtractReport:
    """Outcome of an extraction run."""

    computed: list = field(default_factory=list)  # manifest rows of newly computed tracks
    cached: list = field(default_factory=list)  # rows whose features were already stored
    failed: list = field(default_factory=list)  # (path, reason) pairs
    skipped: list = field(default_factory=list)  # (path, reason): files the dataset passed over
    seconds: float = 0.0
    audio_seconds: float = 0.0  # duration of the newly computed audio

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary_line(self) -> str:
        rate = f", {self.audio_seconds / self.seconds:.1f}x real time" if self.computed and self.seconds > 0 else ""
        skipped = f", {len(self.skipped)} files skipped" if self.skipped else ""
        return (f"{len(self.computed)} extracted, {len(self.cached)} already in store, "
                f"{len(self.failed)} failed{skipped} in {self.seconds:.1f} s{rate}")


def store_feature_config(store_root, family: str | None = None, musicnn_model: str | None = None,
                         backend: str | None = None, device: str | None = None) -> FeatureConfig | None:
    """The feature config to extract into ``store_root`` with, from the options a user gave.

    A new store gets a config of the options given (the defaults for the rest). An
    existing store keeps its own config with the given options applied: execution
    options (backend, device) may differ from the store's; a different family or tagger
    is then refused by :class:`~genreseg.store.FeatureStore` with a message saying so.
    Returns ``None`` for an existing store when nothing was given (use the store's).
    """
    given = {k: v for k, v in {"family": family, "musicnn_model": musicnn_model, "backend": backend}.items()
             if v is not None}
    if device is not None and (given or not (Path(store_root) / "store.json").exists()):
        given["device"] = device
    if (Path(store_root) / "store.json").exists():
        config = FeatureStore(store_root).config.replace(**given) if given else None
    else:
        config = FeatureConfig(**given)
    if musicnn_model is not None and not config.uses_musicnn:
        raise GenresegError(f"{store_root}: --musicnn-model applies to musicnn frames; this store's features are "
                            f"{config.describe()} (give --features musicnn or both for a new store)")
    return config


def _set_threads(n: int, config: FeatureConfig) -> None:
    """Intra-op threads of this worker: the fast CPU engine's, and torch's when the
    backend needs torch (the fast CPU path does not import it)."""
    from .features.engines import set_cpu_threads

    set_cpu_threads(n)
    if config.backend != "fast" or config.device != "cpu" or config.uses_musicnn or "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def extract_one(track: dict, store_root: str, config_dict: dict, torch_threads: int = 0) -> dict:
    """Extract one file into the store; runs on a worker.

    Parameters
    ----------
    track : dict
        ``path``, ``label``, ``track_id`` and optionally ``split``, ``artist``.
    store_root : str
    config_dict : dict
        :meth:`FeatureConfig.to_dict` (plain data travels to remote workers).
    torch_threads : int
        Intra-op threads for this worker; 0 leaves torch's default.

    Returns
    -------
    dict
        The manifest row plus ``status`` ("computed" or "cached"), or ``status="failed"``
        and ``error`` (a one-line reason naming the file).
    """
    path = track["path"]
    try:
        config = FeatureConfig.from_dict(config_dict)
        if torch_threads:
            _set_threads(torch_threads, config)
        store = FeatureStore(store_root, config)
        key = store.key_for(content_hash(path))
        row = {"track_id": track["track_id"], "path": str(path), "label": track.get("label"),
               "split": track.get("split"), "artist": track.get("artist"), "key": key}
        if store.has(key):
            info = store.read(key).info
            return dict(row, duration=info.get("duration"), n_frames=info["shape"][0], status="cached")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # silence is valid audio; it is reported in the row instead of as a warning
            warnings.simplefilter("ignore", SilentAudioWarning)
            # streamed: a long file is never held whole in memory
            feats = compute_features_from_file(path, config, info={"content_hash": key.split("-")[0]})
        store.write(key, feats)
        return dict(row, duration=feats.info["duration"], n_frames=feats.n_frames, silent=feats.info["silent"],
                    status="computed", seconds=time.perf_counter() - t0)
    except GenresegError as err:
        return {"track_id": track["track_id"], "path": str(path), "status": "failed", "error": str(err)}
    except Exception as err:  # noqa: BLE001 - a batch must survive any one file
        return {"track_id": track["track_id"], "path": str(path), "status": "failed",
                "error": f"{path}: {type(err).__name__}: {err}"}


def _as_dict(track) -> dict:
    if isinstance(track, dict):
        d = dict(track)
    else:
        d = {name: getattr(track, name, None) for name in ("path", "label", "split", "artist", "track_id")}
    d["path"] = str(d["path"])
    d["track_id"] = d.get("track_id") or d["path"]
    return d


def extract(tracks, store_root, config: FeatureConfig | None = None, workers: int = 2,
            scheduler: str | None = None, progress: bool = True, skipped=()) -> ExtractReport:
    """Extract features of ``tracks`` into the store at ``store_root``.

    Parameters
    ----------
    tracks : iterable of Track or dict
        Objects with ``path``, ``label``, ``track_id`` (and optional ``split``, ``artist``).
    store_root : path
    config : FeatureConfig, optional
        Needed for a new store; an existing store's config is used (and checked) otherwise.
    workers : int
        Local worker processes; 0 runs in this process without Dask.
    scheduler : str, optional
        Address of an existing Dask scheduler (overrides ``workers``).
    progress : bool
        Show a progress bar (files, rate, ETA).
    skipped : sequence of (path, reason)
        Files the dataset listing passed over (:attr:`genreseg.datasets.LoadResult.skipped`),
        recorded with the failures in the store's problem list (``genreseg info``).

    Returns
    -------
    ExtractReport
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    store = FeatureStore(store_root, config)
    store.clean_tmp()
    items = [_as_dict(t) for t in tracks]
    config_dict = store.config.to_dict()
    report = ExtractReport(skipped=[tuple(s) for s in skipped])
    bar = tqdm(total=len(items), unit="file", desc="extract", disable=not progress, dynamic_ncols=True)

    def handle(result: dict) -> None:
        status = result.pop("status")
        if status == "failed":
            report.failed.append((result["path"], result["error"]))
        else:
            result.pop("seconds", None)
            store.append_rows([result])
            (report.computed if status == "computed" else report.cached).append(result)
            if status == "computed":
                report.audio_seconds += result.get("duration") or 0.0
        bar.update(1)
        bar.set_postfix(failed=len(report.failed), refresh=False)

    try:
        if workers == 0 and scheduler is None:
            for item in items:
                handle(extract_one(item, str(store.root), config_dict))
        else:
            _extract_dask(items, store, config_dict, workers, scheduler, handle)
    finally:
        bar.close()
        store.compact()
        store.write_problems(failed=report.failed, skipped=report.skipped)
        report.seconds = time.perf_counter() - t0
    return report


def local_cluster(n_workers: int):
    """A Dask ``LocalCluster`` of one-thread worker processes, set up for this workload.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers, which freezes
    glibc's mmap threshold: every large array is then a fresh mmap, and the
    transform ran at half speed (1.51 s against 0.75 s a 30-s clip). It is unset here.
    """
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=40)


def _extract_dask(items, store, config_dict, workers, scheduler, handle) -> None:
    from dask.distributed import Client, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
        threads = 0
    else:
        n = max(1, workers)
        # One torch thread per worker process: processes scale better than intra-op
        # threads for this workload, and oversubscribing the cores helps nobody.
        threads = max(1, usable_cpus() // n)
        cluster = local_cluster(n)
        client = Client(cluster)
    try:
        futures = {client.submit(extract_one, item, str(store.root), config_dict, threads, pure=False): item
                   for item in items}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as err:  # noqa: BLE001 - e.g. a worker killed for memory
                item = futures[fut]
                result = {"track_id": item["track_id"], "path": item["path"], "status": "failed",
                          "error": f"{item['path']}: worker failed ({type(err).__name__}: {err})"}
            handle(result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
