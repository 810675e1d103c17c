"""The HTTP service and web page of ``genreseg serve``.

- :mod:`genreseg.service.analysis`: what is said about a file (:func:`analyse`) and a model;
- :mod:`genreseg.service.config`: the limits (:class:`ServeConfig`);
- :mod:`genreseg.service.upload`: a multipart upload streamed to a private temporary file;
- :mod:`genreseg.service.app`: the FastAPI app (:func:`create_app`) and :func:`serve` (uvicorn);
- ``static/``: the page (plain HTML, CSS and JavaScript; nothing loaded from elsewhere).
"""

from .analysis import analyse, describe_model, smooth_timeline
from .config import ServeConfig

__all__ = ["ServeConfig", "analyse", "create_app", "describe_model", "serve", "smooth_timeline"]


def __getattr__(name):
    # Lazy: FastAPI and uvicorn load only when an app is made (the CLI's parser reads ServeConfig).
    if name in ("create_app", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'genreseg.service' has no attribute {name!r}")
