"""Figures of a reproduction run, drawn with matplotlib's Agg canvas (no display needed).

Every function takes plain arrays, writes one PNG and returns its path. They build a
:class:`matplotlib.figure.Figure` directly instead of going through ``pyplot``, so no
global figure state or GUI backend is involved (safe in worker processes and tests).

* :func:`plot_confusion` — confusion matrix, rows true, cells coloured by row share;
* :func:`plot_posterior_summary` — the paper's Figure 3: for every test track the max,
  min and mean frame posterior of every class (panels a–c, tracks grouped by true
  genre), and one track's frame posteriors over time (panel d);
* :func:`plot_training_curves` — loss and frame accuracy per epoch of each model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["choose_example_track", "plot_confusion", "plot_posterior_summary", "plot_training_curves"]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Constrained layout keeps colour bars and outside legends from overlapping panels.
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def _class_colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --------------------------------------------------------------------------- confusion
def plot_confusion(confusion, label_names, path, title: str = "") -> Path:
    """Confusion matrix as an image: colour = share of the true class, text = count.

    Parameters
    ----------
    confusion : array of int, shape (C, C)
        Rows true, columns predicted.
    label_names : list of str
    path : path-like
        The PNG to write.
    title : str

    Returns
    -------
    Path
    """
    m = np.asarray(confusion, dtype=np.float64)
    n = len(label_names)
    if m.shape != (n, n):
        raise ValueError(f"confusion of shape {m.shape} for {n} labels")
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = _figure(1.0 + 0.55 * n, 0.8 + 0.5 * n)
    ax = fig.add_subplot()
    im = ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return _save(fig, path)


# --------------------------------------------------------------------------- Figure 3
def choose_example_track(posteriors_list, labels) -> int:
    """Index of the track shown in Figure 3(d).

    The correctly voted track whose frames agree least with the vote (the smallest
    share of frames on the majority class): its posteriors move over time, which is
    what the panel is there to show. When no track is voted right, the least
    contested one overall.
    """
    shares, right = [], []
    for p, y in zip(posteriors_list, labels):
        votes = np.bincount(np.asarray(p).argmax(axis=1), minlength=np.shape(p)[1])
        shares.append(votes.max() / max(1, votes.sum()))
        right.append(int(votes.argmax()) == int(y))
    shares, right = np.asarray(shares), np.asarray(right)
    if right.any():
        candidates = np.flatnonzero(right)
        return int(candidates[np.argmin(shares[candidates])])
    return int(np.argmax(shares))


def _grouped_image(ax, values, labels, label_names, title):
    """Tracks (columns, grouped by true label) × classes (rows) image with group marks."""
    n_classes = len(label_names)
    im = ax.imshow(values.T, aspect="auto", vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
    bounds = np.flatnonzero(np.diff(labels)) + 0.5
    for b in bounds:
        ax.axvline(b, color="white", lw=0.8)
    # Name each group at its centre.
    edges = np.concatenate([[-0.5], bounds, [len(labels) - 0.5]])
    centres = (edges[:-1] + edges[1:]) / 2
    ax.set_xticks(centres, [label_names[int(labels[int(np.ceil(c))])] if len(labels) else "" for c in centres],
                  rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n_classes), label_names, fontsize=7)
    ax.set_xlabel("test tracks, grouped by true genre", fontsize=8)
    ax.set_ylabel("class", fontsize=8)
    ax.set_title(title, fontsize=9)
    return im


def plot_posterior_summary(posteriors_list, labels, label_names, path, track_ids=None, example: int | None = None,
                           hop_seconds: float | None = None, title: str = "") -> Path:
    """The paper's Figure 3 for one set of test tracks.

    Parameters
    ----------
    posteriors_list : list of np.ndarray, each (T_i, C)
        Frame posteriors of the test tracks.
    labels : array of int, shape (n_tracks,)
        True classes.
    label_names : list of str
    path : path-like
    track_ids : list of str, optional
        Names the example track.
    example : int, optional
        Index of the track of panel (d); default :func:`choose_example_track`.
    hop_seconds : float, optional
        Frame hop, for a time axis in seconds (frames otherwise).
    title : str

    Returns
    -------
    Path
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(posteriors_list) != len(labels) or not len(labels):
        raise ValueError("one posterior matrix per label, and at least one track, required")
    order = np.argsort(labels, kind="stable")
    stats = {name: np.stack([fn(np.asarray(posteriors_list[i]), axis=0) for i in order])
             for name, fn in (("max", np.max), ("min", np.min), ("mean", np.mean))}
    fig = _figure(13, 9)
    axes = fig.subplots(2, 2)
    for ax, (letter, name) in zip(axes.flat[:3], (("a", "max"), ("b", "min"), ("c", "mean"))):
        im = _grouped_image(ax, stats[name], labels[order], label_names,
                            f"({letter}) {name} frame posterior of each class, per test track")
        fig.colorbar(im, ax=ax, shrink=0.9, label="posterior")

    ex = choose_example_track(posteriors_list, labels) if example is None else int(example)
    p = np.asarray(posteriors_list[ex])
    t = np.arange(len(p)) * hop_seconds if hop_seconds else np.arange(len(p))
    ax = axes[1, 1]
    for c, color in zip(range(p.shape[1]), _class_colors(p.shape[1])):
        ax.plot(t, p[:, c], color=color, lw=2.0 if c == labels[ex] else 1.0, label=label_names[c])
    name = track_ids[ex] if track_ids is not None else f"track {ex}"
    ax.set_title(f"(d) frame posteriors of {name} (true: {label_names[labels[ex]]})", fontsize=9)
    ax.set_xlabel("time (s)" if hop_seconds else "frame")
    ax.set_ylabel("posterior")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, ncol=min(5, p.shape[1]), loc="upper center", bbox_to_anchor=(0.5, -0.15))
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


# --------------------------------------------------------------------------- training curves
def plot_training_curves(histories: dict, path, title: str = "") -> Path:
    """Loss and frame accuracy per epoch of several models, averaged over their runs.

    Parameters
    ----------
    histories : dict of str to list of dict
        Model name → the ``TrainedFrameModel.history`` of each run (fold, seed). Runs
        of one model are averaged epoch by epoch (over the epochs all runs have).
    path : path-like
    title : str

    Returns
    -------
    Path
    """
    from matplotlib.ticker import MaxNLocator

    fig = _figure(13, 5)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for (name, runs), color in zip(histories.items(), _class_colors(len(histories))):
        runs = [r for r in runs if r and r.get("loss")]
        if not runs:
            continue
        n = min(len(r["loss"]) for r in runs)
        epochs = np.arange(1, n + 1)

        def mean_of(key, runs=runs, n=n):
            have = [r[key][:n] for r in runs if len(r.get(key, [])) >= n]
            return np.mean(have, axis=0) if have else None

        ax_loss.plot(epochs, mean_of("loss"), color=color, marker=".", label=name)
        ax_acc.plot(epochs, mean_of("frame_acc"), color=color, marker=".", label=f"{name} train")
        valid = mean_of("valid_frame_acc")
        if valid is not None:
            ax_acc.plot(epochs, valid, color=color, ls="--", label=f"{name} held out")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (mean per-frame cross-entropy)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("frame accuracy")
    ax_acc.set_ylim(0, 1.02)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.legend(fontsize=7)
    ax_acc.legend(fontsize=6, ncol=2, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)
