"""The HTTP service: a FastAPI app over :func:`genreseg.service.analysis.analyse`.

>>> from genreseg.service import ServeConfig, create_app
>>> app = create_app("model", ServeConfig(max_upload_mb=50))   # any ASGI server can run it
>>> from genreseg.service import serve
>>> serve("model", port=8000)                                   # uvicorn, as `genreseg serve`

Endpoints: ``POST /predict`` (multipart upload of one audio file), ``GET /model``,
``GET /health``, ``GET /`` (the page, with its files under ``/static``). Errors are
JSON ``{"detail": "<one line>"}`` with 400 (malformed request), 408 (upload slower
than the timeout), 413 (too large), 415 (not multipart), 422 (a file that cannot be
analysed: the line ``genreseg predict`` prints), 503 + ``Retry-After`` (queue full),
504 (analysis slower than the timeout).

One analysis runs at a time per process, in a worker thread: the scattering already
spreads over every core, so two at once would only share them (``--workers`` adds
processes for machines with many cores).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import statistics
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import GenresegError
from ..runtime import usable_cpus
from .analysis import analyse, describe_model, warm_up
from .config import ServeConfig
from .upload import receive_upload

log = logging.getLogger("genreseg.serve")
STATIC = Path(__file__).with_name("static")
#: Environment variable through which `serve` hands the model and settings to worker processes.
ENV_SETTINGS = "GENRESEG_SERVE_SETTINGS"


class AnalysisQueue:
    """A bounded queue of analyses run one at a time in a worker thread.

    Full at ``size`` analyses pending, or sooner when a new one would expect to finish
    after ``timeout_s`` ((pending + 1) x the median of the last 20 analysis times; never
    when idle): it would only time out after its upload (measured: with room for 64 and
    no such check, 18 of 50 concurrent 30-s clips got 504 on the loaded 2-core machine).
    A median, because a few long songs among short clips should not close the queue (a
    running mean did, after five 4-minute songs: 44 of 50 clips refused).

    ``pending`` (admitted, running or waiting) is only touched on the event loop, so
    :meth:`admit`'s check-and-count needs no lock.
    """

    def __init__(self, size: int, timeout_s: float = float("inf")):
        self.size, self.timeout_s, self.pending = size, timeout_s, 0
        self._executor = None  # made on first use: an app may be started again after a shutdown
        self._recent = collections.deque([1.0], maxlen=20)  # seconds of the last analyses

    def admit(self) -> None:
        """Count one more analysis, or raise 503 with a Retry-After estimate when full."""
        typical = statistics.median(self._recent)
        late = self.pending and (self.pending + 1) * typical > self.timeout_s  # idle: always try
        if self.pending >= self.size or late:
            retry = max(1, math.ceil(typical * self.pending))
            raise HTTPException(503, f"busy: {self.pending} analyses in progress or waiting; "
                                     f"try again in {retry} s", headers={"Retry-After": str(retry)})
        self.pending += 1

    def release(self) -> None:
        self.pending -= 1

    def submit(self, fn, on_done) -> Future:
        """Run ``fn()`` in turn; the future's result is ``(fn(), seconds it ran)``.

        ``on_done()`` and :meth:`release` follow whenever it ends or is cancelled before
        starting (a timed-out request does not free its place early).
        """
        loop = asyncio.get_running_loop()

        def timed():
            t0 = time.perf_counter()
            try:
                return fn(), time.perf_counter() - t0
            finally:
                self._recent.append(time.perf_counter() - t0)

        def done(_future):
            on_done()
            if not loop.is_closed():  # else the server has stopped: nothing left to count
                loop.call_soon_threadsafe(self.release)

        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genreseg-analysis")
        future = self._executor.submit(timed)
        future.add_done_callback(done)
        return future

    def shutdown(self) -> None:
        """Drop the waiting analyses and wait for the running one (so its upload is deleted)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def create_app(model, config: ServeConfig = ServeConfig()) -> FastAPI:
    """The service's ASGI app for ``model``.

    Parameters
    ----------
    model : GenreClassifier or str or Path
        A fitted classifier (or anything with its interface), or a model directory
        (loaded once, here).
    config : ServeConfig

    Returns
    -------
    fastapi.FastAPI
    """
    from ..pretrained import load_model

    clf = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    queue = AnalysisQueue(config.queue, config.timeout_s)
    limits = {"max_upload_bytes": config.max_upload_bytes, "max_duration_s": config.max_duration_s,
              "queue": config.queue, "timeout_s": config.timeout_s}
    model_info = {**describe_model(clf), "limits": limits}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        queue.shutdown()

    # No /docs: Swagger's page loads from a CDN, which a machine offline cannot reach.
    app = FastAPI(title="genreseg", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Music genre of an audio file, with its class probabilities and timeline.")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.classifier, app.state.queue, app.state.config = clf, queue, config

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    def health():
        return {"status": "ok", "version": __version__, "pid": os.getpid(),
                "queue": {"pending": queue.pending, "size": queue.size}}

    @app.get("/model")
    def model_description():
        return model_info

    @app.post("/predict")
    async def predict(request: Request):
        """Genre, probabilities, duration, posterior timeline and segments of one uploaded file."""
        queue.admit()  # before reading the body: a full queue costs the client no upload
        upload, handed_over = None, False
        try:
            try:
                async with asyncio.timeout(config.timeout_s):
                    upload = await receive_upload(request, config.max_upload_bytes, config.tmp_dir)
            except TimeoutError:
                raise HTTPException(408, f"upload not complete within {config.timeout_s:g} s") from None
            job = partial(analyse, clf, upload.path, name=upload.name, max_duration=config.max_duration_s,
                          smooth_s=config.smooth_s, max_points=config.timeline_points)
            t0 = time.perf_counter()
            future = queue.submit(job, on_done=upload.delete)
            handed_over = True
            try:
                async with asyncio.timeout(config.timeout_s):
                    result, seconds = await asyncio.wrap_future(future)
            except TimeoutError:
                log.warning("%s: analysis timed out after %g s", upload.name, config.timeout_s)
                raise HTTPException(504, f"{upload.name}: analysis not finished within "
                                         f"{config.timeout_s:g} s (the server's limit)") from None
            except GenresegError as err:
                log.info("refused %s", err)
                raise HTTPException(422, str(err)) from None
            except Exception as err:  # a bug, not the file: say so, keep serving
                log.exception("%s: analysis failed", upload.name)
                raise HTTPException(500, f"{upload.name}: internal error ({type(err).__name__}: {err})") from None
            waited = time.perf_counter() - t0 - seconds
            log.info("%s: %s (%.1f s of audio, analysed in %.2f s after %.2f s in the queue)", upload.name,
                     result["genre"], result["duration_s"], seconds, waited)
            return {**result, "analysis_s": round(seconds, 3), "queued_s": round(waited, 3)}
        finally:
            if not handed_over:
                queue.release()
                if upload is not None:
                    upload.delete()

    return app


def app_from_environment() -> FastAPI:
    """App factory of each worker process of ``serve(..., workers=N)`` (settings from the environment)."""
    settings = json.loads(os.environ[ENV_SETTINGS])
    _use_cores(settings["cores"])
    return _ready(create_app(settings["model"], ServeConfig.from_dict(settings["config"])))


def _use_cores(cores: int) -> None:
    """Threads of a server process: ``cores`` for the scattering, one for the frame model.

    A track's frame model is a chain of ~80 small steps (LSTM) or one small product
    (DNN): a second OpenMP thread only adds a barrier per step, and a barrier waits for
    a time slice whenever the machine is busy. Measured on the shared 2-core machine
    (load ~7): LSTM[512] over 81 frames took 1.0 s with 2 threads, 0.036 s with 1.
    """
    import torch

    from ..features.engines import set_cpu_threads

    set_cpu_threads(cores)  # before torch's setting changes: the scattering follows torch's by default
    torch.set_num_threads(1)


def _ready(app: FastAPI) -> FastAPI:
    log.info("warming up: one analysis of noise took %.1f s", warm_up(app.state.classifier))
    return app


def serve(model, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          config: ServeConfig = ServeConfig(), log_level: str = "info") -> None:
    """Run the service on uvicorn until interrupted.

    Parameters
    ----------
    model : str or Path
        Model directory. Loaded here first, so that a bad model fails before the port
        is bound; each of ``workers`` processes then loads its own copy.
    host : str
        Interface to bind; the default serves this machine only.
    port : int
    workers : int
        Server processes, each with its model and its own queue of ``config.queue``.
    config : ServeConfig
    log_level : str
    """
    import logging.config

    import uvicorn

    from ..pretrained import load_model

    logging.config.dictConfig(log_config := _log_config(log_level))
    clf = load_model(model)
    _check_port(host, port)  # before warming up: a port in use fails at once
    cores = usable_cpus()
    if workers <= 1:
        _use_cores(cores)
        uvicorn.run(_ready(create_app(clf, config)), host=host, port=port, log_config=log_config)
        return
    # A pretrained tagger travels by its name, a model directory by its absolute path.
    where = str(model) if getattr(clf, "pretrained", False) else str(Path(model).resolve())
    del clf
    # N processes share the cores instead of each taking all of them
    os.environ[ENV_SETTINGS] = json.dumps({"model": where, "config": config.to_dict(),
                                           "cores": max(1, cores // workers)})
    uvicorn.run("genreseg.service.app:app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_config=log_config)


def _check_port(host: str, port: int) -> None:
    """Raise GenresegError when ``host:port`` cannot be listened on (in use, no such address)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind((host, port))
    except OSError as err:
        raise GenresegError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None


def _log_config(level: str) -> dict:
    """uvicorn's logging, with the service's own lines (one per analysis) in the same format."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in config["loggers"]:
        config["loggers"][name]["level"] = level.upper()
    config["loggers"]["genreseg"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
