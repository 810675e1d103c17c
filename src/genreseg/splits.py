"""Evaluation splits over per-track arrays, in the manner of ``sklearn.model_selection``.

Every function takes arrays with one entry per track (labels, artists, split names,
content keys), never track objects, and returns a list of ``(train_indices,
test_indices)`` pairs of sorted int64 arrays into those arrays:

:func:`official_split`
    The collection's own train/test split (ISMIR 2004's ``training``/``development``).
:func:`kfold_splits`
    Stratified k-fold.
:func:`artist_kfold_splits`
    Stratified k-fold with no artist on both sides (``StratifiedGroupKFold``).
:func:`make_splits`
    Dispatches on a protocol name (:data:`PROTOCOLS`).
:func:`inner_splitter`
    The stratified folds inside a training set used for cross-fitting.

**Replicas.** A collection can hold the same audio twice (GTZAN holds exact copies
under different names). Pass ``replicas`` (one content key per track: the store's
entry key or :func:`genreseg.audio.content_hash`) and identical audio always falls on
one side of every split:

- ``kfold``: folds are made as without replicas, then every later copy moves to the
  fold of its first copy (in track order). Without replicas nothing moves, so the folds
  are exactly those of plain ``StratifiedKFold``; with a few replicas only those few
  tracks change fold (stratification is disturbed by at most the replicas' count).
- ``artist-kfold``: artists linked by a shared recording are merged into one group,
  named by the first of their names in sorted order. Without replicas every group is
  its artist's name, so the folds are unchanged.
- ``official``: the split is the collection's and is not moved; a test track whose
  content is also in the training part is left out of the test part.

Every failure raises :class:`genreseg.errors.DatasetError` with a one-line message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import DatasetError

__all__ = [
    "PROTOCOLS",
    "artist_kfold_splits",
    "first_copies",
    "inner_splitter",
    "kfold_splits",
    "make_splits",
    "official_split",
]

PROTOCOLS = ("official", "kfold", "artist-kfold")

Split = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------------------
# Checks and conversions


def _as_index(values: Iterable[int]) -> np.ndarray:
    return np.asarray(sorted(values), dtype=np.int64)


def _to_pairs(folds) -> list[Split]:
    return [(_as_index(train), _as_index(test)) for train, test in folds]


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise DatasetError(f"k={k!r}: the number of folds must be an integer of at least 2")
    return int(k)


def _as_list(values, name: str, n: int | None = None) -> list:
    if values is None:
        raise DatasetError(f"{name}: required by this split")
    values = list(values)
    if n is not None and len(values) != n:
        raise DatasetError(f"{name}: {len(values)} values for {n} tracks")
    return values


def _label_codes(labels: Iterable) -> np.ndarray:
    """Labels as integer codes, so sklearn sees a plain multiclass target.

    An object array of ints reads as target type "unknown" to sklearn; codes work for
    any hashable labels. Codes follow sorted label order where labels sort (as
    ``np.unique`` would), so folds equal sklearn's on the raw labels.
    """
    labels = list(labels)
    distinct = list(dict.fromkeys(labels))
    try:
        distinct = sorted(distinct)
    except TypeError:  # mixed, unorderable labels: first appearance is still deterministic
        pass
    code = {label: i for i, label in enumerate(distinct)}
    return np.asarray([code[label] for label in labels], dtype=np.int64)


def _check_class_sizes(labels: Sequence, k: int, what: str = "tracks") -> None:
    """Refuse a stratified split sklearn would warn about or fail on, naming the label."""
    counts = Counter(labels)
    small = sorted((n, str(label)) for label, n in counts.items() if n < k)
    if small:
        n, label = small[0]
        others = f" (and {len(small) - 1} more labels)" if len(small) > 1 else ""
        raise DatasetError(f"{k}-fold split: label {label!r} has only {n} {what}, fewer than k={k}{others}")


def first_copies(replicas: Sequence) -> np.ndarray:
    """For each track, the index of the first track with the same content key.

    ``first_copies(["a", "b", "a"])`` is ``[0, 1, 0]``; without replicas it is
    ``arange(n)``.
    """
    first: dict = {}
    return np.asarray([first.setdefault(key, i) for i, key in enumerate(replicas)], dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Protocols


def official_split(split_names: Sequence, train: str = "training", test: str = "development", *,
                   replicas: Sequence | None = None) -> list[Split]:
    """The collection's own train/test split (ISMIR 2004, or any tracks with a split name).

    Tracks of other splits (such as ISMIR 2004's ``evaluation``) are in neither part.

    Parameters
    ----------
    split_names : sequence of str or None
        Each track's split name (None for none).
    train, test : str
        The split names of the train and the test part.
    replicas : sequence, optional
        A content key per track; test tracks whose content is also in the train part
        are left out of the test part.

    Returns
    -------
    list of (ndarray, ndarray)
        One ``(train_indices, test_indices)`` pair of sorted int64 arrays.

    Raises
    ------
    DatasetError
        ``train == test``, or either part is empty.
    """
    if train == test:
        raise DatasetError(f"official split: train and test are both {train!r}")
    split_names = list(split_names)
    available = sorted({s for s in split_names if s is not None})
    parts = []
    for name in (train, test):
        idx = _as_index(i for i, s in enumerate(split_names) if s == name)
        if idx.size == 0:
            have = ", ".join(available) if available else "none (the tracks carry no split)"
            raise DatasetError(f"official split: no track in split {name!r} (splits present: {have})")
        parts.append(idx)
    if replicas is not None:
        replicas = _as_list(replicas, "replicas", len(split_names))
        in_train = {replicas[i] for i in parts[0]}
        parts[1] = parts[1][[replicas[i] not in in_train for i in parts[1]]]
        if parts[1].size == 0:
            raise DatasetError(f"official split: every track of {test!r} is a copy of a track in {train!r}")
    return [(parts[0], parts[1])]


def kfold_splits(labels: Sequence, k: int, seed: int, *, replicas: Sequence | None = None) -> list[Split]:
    """Stratified k-fold cross-validation.

    Parameters
    ----------
    labels : sequence
        One label per track (any hashable values).
    k : int
        Number of folds, at least 2.
    seed : int
        Shuffling seed; the same labels, ``k`` and seed give the same folds.
    replicas : sequence, optional
        A content key per track: every copy goes to the test fold of its first copy
        (see the module docstring); without replicas the folds are unchanged.

    Returns
    -------
    list of (ndarray, ndarray)
        ``k`` pairs of sorted int64 index arrays; the test parts partition the tracks.

    Raises
    ------
    DatasetError
        ``k < 2``, no tracks, or a label has fewer than ``k`` tracks (the message names it).
    """
    from sklearn.model_selection import StratifiedKFold

    k = _check_k(k)
    labels = list(labels)
    if not labels:
        raise DatasetError(f"{k}-fold split: no tracks to split")
    _check_class_sizes(labels, k)
    codes = _label_codes(labels)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    pairs = _to_pairs(folds.split(np.zeros(len(codes)), codes))
    if replicas is None:
        return pairs
    first = first_copies(_as_list(replicas, "replicas", len(labels)))
    if np.array_equal(first, np.arange(len(labels))):
        return pairs
    fold_of = np.empty(len(labels), dtype=np.int64)
    for f, (_, test) in enumerate(pairs):
        fold_of[test] = f
    fold_of = fold_of[first]
    everything = np.arange(len(labels), dtype=np.int64)
    pairs = [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]
    if any(test.size == 0 for _, test in pairs):
        raise DatasetError(f"{k}-fold split: a fold holds only copies of other folds' tracks; use a smaller k")
    return pairs


def _merged_groups(artists: list, replicas: list) -> list:
    """Artists linked by a shared recording, merged; each group named by its smallest artist."""
    parent = {a: a for a in artists}

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first_artist: dict = {}
    for artist, key in zip(artists, replicas):
        other = first_artist.setdefault(key, artist)
        a, b = root(artist), root(other)
        if a != b:
            parent[max(a, b)] = min(a, b)  # the smaller name stays the root
    return [root(a) for a in artists]


def artist_kfold_splits(labels: Sequence, artists: Sequence, k: int, seed: int, *,
                        replicas: Sequence | None = None) -> list[Split]:
    """Artist-filtered stratified k-fold: no artist is in both train and test.

    Folds are stratified as well as the artists' sizes allow (sklearn
    ``StratifiedGroupKFold`` with the artist as group). A label recorded by fewer
    than ``k`` artists is absent from some test folds; one recorded by a single
    artist is absent from that fold's training part too.

    Parameters
    ----------
    labels : sequence
        One label per track.
    artists : sequence of str
        One artist per track; none may be empty or None.
    k : int
        Number of folds, at least 2.
    seed : int
        Shuffling seed.
    replicas : sequence, optional
        A content key per track: artists sharing a recording are kept together (see the
        module docstring); without replicas the folds are unchanged.

    Returns
    -------
    list of (ndarray, ndarray)
        ``k`` pairs of sorted int64 index arrays.

    Raises
    ------
    DatasetError
        ``k < 2``, no tracks, a track has no artist, there are fewer distinct artists
        than ``k``, or a fold would have an empty test part.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    k = _check_k(k)
    labels = list(labels)
    if not labels:
        raise DatasetError("artist-filtered split: no tracks to split")
    artists = _as_list(artists, "artists", len(labels))
    no_artist = [i for i, a in enumerate(artists) if not a]
    if no_artist:
        raise DatasetError(f"artist-filtered split: {len(no_artist)} of {len(labels)} tracks have no artist "
                           f"(first: track {no_artist[0]})")
    n_artists = len(set(artists))
    if n_artists < k:
        raise DatasetError(f"artist-filtered split: only {n_artists} distinct artists, fewer than k={k}")
    groups = artists
    if replicas is not None:
        groups = _merged_groups(artists, _as_list(replicas, "replicas", len(labels)))
        n_groups = len(set(groups))
        if n_groups < k:
            raise DatasetError(f"artist-filtered split: only {n_groups} groups of artists that share no "
                               f"recording, fewer than k={k}")
    codes = _label_codes(labels)
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    pairs = _to_pairs(folds.split(np.zeros(len(codes)), codes, groups=np.asarray(groups, dtype=object)))
    # The greedy group assignment can, in principle, leave a fold without test tracks.
    if any(test.size == 0 for _, test in pairs):
        raise DatasetError(f"artist-filtered split: a fold has no test tracks with k={k}; use a smaller k")
    return pairs


def make_splits(labels: Sequence, protocol: str, k: int = 5, seed: int = 0, *, split_names: Sequence | None = None,
                artists: Sequence | None = None, replicas: Sequence | None = None) -> list[Split]:
    """Train/test index pairs for an evaluation protocol.

    Parameters
    ----------
    labels : sequence
        One label per track.
    protocol : {"official", "kfold", "artist-kfold"}
        ``official``: :func:`official_split` on ``split_names`` with its defaults
        (``k`` and ``seed`` unused); ``kfold``: :func:`kfold_splits`;
        ``artist-kfold``: :func:`artist_kfold_splits` on ``artists``.
    k : int
    seed : int
    split_names, artists : sequence, optional
        Per track; needed by ``official`` and ``artist-kfold``.
    replicas : sequence, optional
        A content key per track; identical audio is kept on one side (module docstring).

    Returns
    -------
    list of (ndarray, ndarray)
    """
    labels = list(labels)
    if protocol == "official":
        names = [None] * len(labels) if split_names is None else _as_list(split_names, "split_names", len(labels))
        return official_split(names, replicas=replicas)
    if protocol == "kfold":
        return kfold_splits(labels, k, seed, replicas=replicas)
    if protocol == "artist-kfold":
        names = [None] * len(labels) if artists is None else artists
        return artist_kfold_splits(labels, names, k, seed, replicas=replicas)
    raise DatasetError(f"unknown protocol {protocol!r} (expected {', '.join(PROTOCOLS)})")


def inner_splitter(labels: np.ndarray, n_folds: int, seed: int):
    """The splitter of the folds inside a training set, for cross-fitting.

    Stratified ``n_folds`` folds; fewer (the smallest class size) when a class is
    smaller, and plain shuffled ``KFold`` when a class has a single track (it cannot be
    stratified; the folds still separate tracks).

    Parameters
    ----------
    labels : array of int
        One label per track.
    n_folds : int
        Wanted number of folds, at least 2.
    seed : int

    Returns
    -------
    sklearn splitter
        Call ``.split(X, labels)`` on it.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    n_folds = _check_k(n_folds)
    labels = np.asarray(labels)
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest >= n_folds:
        return StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    if smallest >= 2:
        return StratifiedKFold(smallest, shuffle=True, random_state=seed)
    return KFold(min(n_folds, len(labels)), shuffle=True, random_state=seed)
