"""Writers for genre timelines: table, CSV, JSON, JAMS, Audacity labels, PNG.

Each takes :class:`genreseg.timeline.Timeline` objects and returns text (or writes a
file), so the CLI, the HTTP service and a notebook share one copy of every format.

* :func:`format_table` — readable, one line a segment (``mm:ss`` times);
* :func:`format_csv` — ``path,start_s,end_s,genre,confidence``, one row a segment;
* :func:`format_json` — :meth:`Timeline.to_dict` of each file;
* :func:`to_jams` — a :class:`jams.JAMS` with one ``segment_open`` annotation (the
  MIR annotation standard: opens in JAMS-aware tools, validates against its schema);
* :func:`format_audacity` — Audacity's label-track text, ``start<TAB>end<TAB>label``
  (File > Import > Labels), so a person can listen along;
* :func:`plot_timeline` — PNG: genre bands over time above the stacked posteriors.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "format_audacity", "format_csv", "format_jams", "format_json", "format_table",
           "plot_timeline", "to_jams"]

#: Output formats and the file extension each one gets under ``--out``.
FORMATS = {"table": ".txt", "csv": ".csv", "json": ".json", "jams": ".jams", "audacity": ".labels.txt"}


def _clock(seconds: float) -> str:
    """``h:mm:ss.s`` (hours only when needed)."""
    m, s = divmod(float(seconds), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m:02d}:{s:04.1f}"


def format_table(timelines) -> str:
    """Readable text: a header per file, then one line a segment."""
    lines = []
    for tl in timelines:
        lines.append(f"{tl.path}  ({_clock(tl.duration_s)}, {len(tl.segments)} segments)")
        width = max([len(s.genre) for s in tl.segments] + [5])
        for s in tl.segments:
            lines.append(f"  {_clock(s.start_s):>10} – {_clock(s.end_s):>10}  {s.genre:<{width}}  "
                         f"{s.confidence:.2f}")
    return "\n".join(lines) + "\n"


def format_csv(timelines) -> str:
    """One row a segment: ``path,start_s,end_s,genre,confidence`` (with a header)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "start_s", "end_s", "genre", "confidence"])
    for tl in timelines:
        for s in tl.segments:
            writer.writerow([tl.path, f"{s.start_s:.3f}", f"{s.end_s:.3f}", s.genre, f"{s.confidence:.4f}"])
    return buf.getvalue()


def format_json(timelines, frames: bool = False) -> str:
    """A JSON list of :meth:`Timeline.to_dict` (``frames`` adds the per-frame posteriors)."""
    return json.dumps([tl.to_dict(frames=frames) for tl in timelines], indent=2) + "\n"


def to_jams(timeline):
    """The timeline as a validated :class:`jams.JAMS` (namespace ``segment_open``).

    Each segment is an observation (time, duration, value = genre, confidence); the
    decoder settings and the genre vocabulary go in the annotation's sandbox.
    """
    import jams

    from . import __version__

    jam = jams.JAMS()
    jam.file_metadata.duration = float(timeline.duration_s)
    jam.file_metadata.title = Path(timeline.path).name
    ann = jams.Annotation(namespace="segment_open", time=0, duration=float(timeline.duration_s))
    ann.annotation_metadata.annotation_tools = f"genreseg {__version__}"
    ann.annotation_metadata.data_source = "machine prediction"
    ann.annotation_metadata.annotation_rules = ("genre segments: Viterbi over frame genre posteriors with a "
                                                "switch penalty and a minimum segment duration")
    ann.sandbox.update(decoder=timeline.config.to_dict(), decoder_hash=timeline.config.hash,
                       label_names=list(timeline.label_names), **timeline.info)
    for s in timeline.segments:
        ann.append(time=float(s.start_s), duration=float(s.end_s - s.start_s), value=s.genre,
                   confidence=float(s.confidence))
    jam.annotations.append(ann)
    jam.validate()
    return jam


def format_jams(timelines) -> str:
    """JAMS JSON of one timeline (a JAMS file describes one recording)."""
    timelines = list(timelines)
    if len(timelines) != 1:
        raise ValueError("a JAMS document describes one recording; write several with --out DIR")
    return to_jams(timelines[0]).dumps(indent=2) + "\n"


def format_audacity(timelines) -> str:
    """Audacity label track: ``start<TAB>end<TAB>genre`` per segment, times in seconds."""
    timelines = list(timelines)
    if len(timelines) != 1:
        raise ValueError("an Audacity label track belongs to one recording; write several with --out DIR")
    return "".join(f"{s.start_s:.6f}\t{s.end_s:.6f}\t{s.genre}\n" for s in timelines[0].segments)


FORMATTERS = {"table": format_table, "csv": format_csv, "json": format_json, "jams": format_jams,
              "audacity": format_audacity}


def plot_timeline(timeline, path) -> Path:
    """PNG of one timeline: decoded genre bands above the stacked frame posteriors.

    Parameters
    ----------
    timeline : genreseg.timeline.Timeline
    path : str or Path
        Where to write the PNG (parent folders are created).
    """
    from .plots import _class_colors, _figure, _save

    names = list(timeline.label_names)
    colors = _class_colors(len(names))
    color_of = dict(zip(names, colors))
    minutes = timeline.duration_s >= 300  # long recordings read better in minutes
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    fig = _figure(12, 4.5)
    bands, stack = fig.subplots(2, 1, sharex=True, height_ratios=[1, 3])
    for s in timeline.segments:
        bands.axvspan(s.start_s / scale, s.end_s / scale, color=color_of[s.genre], alpha=0.35 + 0.65 * s.confidence)
        if (s.end_s - s.start_s) / timeline.duration_s > 0.04:  # label only bands wide enough for text
            bands.text((s.start_s + s.end_s) / 2 / scale, 0.5, s.genre, ha="center", va="center", fontsize=8)
    bands.set_yticks([])
    bands.set_ylim(0, 1)
    bands.set_title(f"{Path(timeline.path).name}: {len(timeline.segments)} segments "
                    f"(switch penalty {timeline.config.switch_penalty:g}, "
                    f"min. {timeline.config.min_duration_s:g} s)", fontsize=10)
    t = np.asarray(timeline.times) / scale
    stack.stackplot(t, np.asarray(timeline.posteriors).T, colors=colors, labels=names, linewidth=0)
    stack.set_ylim(0, 1)
    stack.set_xlim(0, timeline.duration_s / scale)
    stack.set_ylabel("frame posterior")
    stack.set_xlabel(f"time ({unit})")
    stack.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return _save(fig, path)
