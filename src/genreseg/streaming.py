"""Push-style stream stages (``push(item) -> out``, ``finish() -> out``) as generators."""

from __future__ import annotations

__all__ = ["iter_stream"]


def iter_stream(stream, items):
    """Feed ``items`` to ``stream`` and yield every non-empty output, the final one included.

    The pipeline's stages (:class:`genreseg.models.inference.PosteriorStream`, the musicnn
    frame stream) are push-style, so that several can read one pass over a file; this
    gives each the generator form a single consumer wants.
    """
    for item in items:
        out = stream.push(item)
        if len(out):
            yield out
    out = stream.finish()
    if len(out):
        yield out
