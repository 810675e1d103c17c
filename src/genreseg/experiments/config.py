"""What a reproduction run is: the model grids, the rows of the paper's tables, the options.

Grids: ``quick`` divides every hidden size by 8 and trains for few epochs with
2 inner folds, so that the whole run on gtzan_mini (100 clips, 5 folds) fits in a few
minutes on two cores; ``paper`` keeps the paper's sizes (and with ``--preset paper``
its SGD recipe). Rows are always named after the paper's model, with the size actually
run beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..configs import ConfigMixin
from ..errors import GenresegError

__all__ = ["GRIDS", "PAPER_ROWS", "ROW_KEYS", "Grid", "ModelRow", "ReproduceOptions", "command_line", "frame_config_for",
           "model_rows", "segment_config_for", "svm_grid_for"]

#: The rows of the paper's Table 2, (kind, hidden sizes); the LSTMs are Table 3's rows.
PAPER_ROWS = (
    ("dnn", (1024,)),
    ("dnn", (1024, 1024)),
    ("lstm", (512,)),
    ("lstm", (1024,)),
    ("lstm", (512, 512)),
    ("lstm", (1024, 1024)),
)
#: The rows' keys (``ModelRow.key``), what ``--rows`` accepts.
ROW_KEYS = tuple(f"{kind}-{'-'.join(str(h) for h in hidden)}" for kind, hidden in PAPER_ROWS)


# --------------------------------------------------------------------------- grids and rows
@dataclass(frozen=True)
class Grid(ConfigMixin):
    """How big and how long the models of a run are.

    Parameters
    ----------
    name : str
    size_divisor : int
        Every paper hidden size is divided by this (at least 1 unit).
    dnn_epochs, lstm_epochs : int or None
        Training epochs; None keeps the preset's.
    lr : float or None
        Learning rate of every network under the default (Adam) preset; None keeps the
        preset's. Ignored under the paper preset, whose rates are meant for a summed loss.
    inner_folds : int
        Cross-fitting folds of the segment stage.
    cv_folds : int
        Folds of every hyper-parameter search (segment classifiers, baselines).
    seg_C_grid, seg_gamma_grid : tuple of float
        The segment classifiers' SVM grid (see :class:`genreseg.segments.SegmentConfig`).
    svm_C_grid, svm_gamma_grid : tuple of float
        The baselines' SVM grid (see :class:`genreseg.baselines.SVMGrid`).
    lstm_recipe : tuple of (str, value) pairs
        :class:`~genreseg.models.FrameModelConfig` fields set on every LSTM row under
        the default preset (never under the paper preset, kept as the paper's); empty
        keeps the preset's. See ``benchmarks/recipe.py``.
    segment_recipe : tuple of (str, value) pairs
        :class:`~genreseg.segments.SegmentConfig` fields of the segment stage.
    """

    name: str
    size_divisor: int = 1
    dnn_epochs: int | None = None
    lstm_epochs: int | None = None
    lr: float | None = None
    inner_folds: int = 5
    cv_folds: int = 5
    seg_C_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    seg_gamma_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    svm_C_grid: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    svm_gamma_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    lstm_recipe: tuple = ()
    segment_recipe: tuple = ()


GRIDS = {
    # Sizes /8, 8 DNN epochs (cheap) and 6 LSTM epochs, all at Adam lr 3e-3:
    # the small networks learn slowly at the preset's 1e-3. Measured on one gtzan_mini
    # fold (held-out frame accuracy): LSTM(64) 0.86 after 6 epochs at 3e-3 vs 0.77 after
    # 8 at 1e-3, LSTM(64-64) 0.84 vs 0.85, in 75 % of the time; sigmoid DNN(128-128)
    # 0.87 vs 0.84 after 8 epochs.
    # The LSTM recipe (issue 11, benchmarks/recipe.py; ablation in benchmarks/recipe_results.md):
    # random 12-frame (4.5 s) crops every epoch, in batches of 16, and input noise 0.3 on the
    # LSTM rows; the segment stage takes test posteriors from the mean of its inner-fold
    # models (the kind of model whose posteriors it learnt from) and falls back to the vote
    # when the statistics do not beat it on the training tracks. Same epochs. k stays 0.5:
    # choosing it from (0.2, 0.5, 0.8) by inner CV (k_grid) tripled the segment stage's
    # searches (~2 of the demo's 7 minutes) for no measurable gain (5 folds x 3 seeds, FSeg
    # with k_grid / k = 0.5: gtzan_mini 0.823 / 0.827, homburg3 0.704 / 0.709 and 0.707 / 0.711).
    "quick": Grid("quick", size_divisor=8, dnn_epochs=8, lstm_epochs=6, lr=3e-3, inner_folds=2, cv_folds=3,
                  seg_C_grid=(1.0, 10.0, 100.0), seg_gamma_grid=(0.5, 1.0, 2.0),
                  svm_C_grid=(1.0, 10.0, 100.0), svm_gamma_grid=(0.5, 1.0, 2.0),
                  lstm_recipe=(("crop_frames", 12), ("batch_size", 16), ("input_noise", 0.3)),
                  segment_recipe=(("test_posteriors", "inner-mean"), ("vote_fallback", True))),
    "paper": Grid("paper"),
}


def _size_name(kind: str, hidden) -> str:
    return f"{kind.upper()}({'-'.join(str(h) for h in hidden)})"


@dataclass(frozen=True)
class ModelRow:
    """One row of Table 2 (and of Table 3 for an LSTM).

    Attributes
    ----------
    kind : {"dnn", "lstm"}
    paper_hidden : tuple of int
        The sizes in the paper.
    hidden : tuple of int
        The sizes actually trained.
    """

    kind: str
    paper_hidden: tuple[int, ...]
    hidden: tuple[int, ...]

    @property
    def key(self) -> str:
        """Stable identifier, after the paper's model: ``"lstm-512-512"``."""
        return f"{self.kind}-{'-'.join(str(h) for h in self.paper_hidden)}"

    @property
    def paper_name(self) -> str:
        return _size_name(self.kind, self.paper_hidden)

    @property
    def run_name(self) -> str:
        return _size_name(self.kind, self.hidden)

    @property
    def label(self) -> str:
        """``"LSTM(512)"``, or ``"LSTM(512) as LSTM(64)"`` when the size differs."""
        if self.hidden == self.paper_hidden:
            return self.paper_name
        return f"{self.paper_name} as {self.run_name}"

    @property
    def in_table3(self) -> bool:
        return self.kind == "lstm"

    def to_dict(self) -> dict:
        return {"key": self.key, "kind": self.kind, "paper_name": self.paper_name, "run_name": self.run_name,
                "label": self.label, "paper_hidden": list(self.paper_hidden), "hidden": list(self.hidden),
                "tables": [2, 3] if self.in_table3 else [2]}


def model_rows(grid: Grid, keys=()) -> list[ModelRow]:
    """The rows of Table 2 with the sizes of ``grid``: all six, or those of ``keys``."""
    rows = [ModelRow(kind, hidden, tuple(max(1, h // grid.size_divisor) for h in hidden))
            for kind, hidden in PAPER_ROWS]
    return [r for r in rows if not keys or r.key in keys]


def frame_config_for(row: ModelRow, grid: Grid, preset: str = "default", seed: int = 0, device: str = "auto",
                     epochs: int | None = None):
    """The :class:`~genreseg.models.FrameModelConfig` of one row.

    Parameters
    ----------
    row : ModelRow
    grid : Grid
    preset : {"default", "paper"}
        :func:`~genreseg.models.default_preset` or :func:`~genreseg.models.paper_preset`.
    seed : int
    device : str
    epochs : int, optional
        Overrides the grid's and the preset's epochs (smoke tests).
    """
    from ..classifier import make_frame_config

    grid_epochs = grid.dnn_epochs if row.kind == "dnn" else grid.lstm_epochs
    # The grid's recipe and rate belong to the default (Adam) preset only: the paper
    # preset stays the paper's. --epochs wins over everything.
    recipe = dict(grid.lstm_recipe) if preset == "default" and row.kind == "lstm" else {}
    return make_frame_config(row.kind, row.hidden, preset, seed=int(seed), device=device,
                             **{**recipe, "epochs": epochs if epochs is not None else grid_epochs,
                                "lr": grid.lr if preset == "default" else None})


def segment_config_for(grid: Grid, seed: int = 0):
    """The :class:`~genreseg.segments.SegmentConfig` of a run (defaults but the grid's sizes)."""
    from ..segments import SegmentConfig

    return SegmentConfig(C_grid=grid.seg_C_grid, gamma_grid=grid.seg_gamma_grid, inner_folds=grid.inner_folds,
                         cv_folds=grid.cv_folds, seed=int(seed)).replace(**dict(grid.segment_recipe))


def svm_grid_for(grid: Grid, seed: int = 0):
    """The baselines' :class:`~genreseg.baselines.SVMGrid` of a run."""
    from ..baselines import SVMGrid

    return SVMGrid(C_grid=grid.svm_C_grid, gamma_grid=grid.svm_gamma_grid, cv_folds=grid.cv_folds, seed=int(seed))


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class ReproduceOptions(ConfigMixin):
    """Everything a reproduction run depends on (the CLI's options).

    See ``genreseg reproduce --help`` for the meaning of each field.
    """

    data: str
    out: str
    layout: str = "auto"
    protocol: str = "auto"
    folds: int = 5
    seeds: tuple[int, ...] = (0,)
    grid: str = "quick"
    preset: str = "default"
    store: str | None = None
    workers: int = 2
    backend: str | None = None
    epochs: int | None = None
    device: str = "auto"
    threads: int = 1
    baselines: bool = True
    features: str = "scattering"
    rows: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "rows", tuple(self.rows))
        unknown = set(self.rows) - set(ROW_KEYS)
        if unknown:
            raise GenresegError(f"unknown rows {sorted(unknown)} (expected some of {', '.join(ROW_KEYS)})")
        if self.grid not in GRIDS:
            raise GenresegError(f"unknown grid {self.grid!r} (expected {', '.join(GRIDS)})")
        if not self.seeds:
            raise GenresegError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise GenresegError(f"repeated seed in {list(self.seeds)}")
        if self.epochs is not None and self.epochs < 1:
            raise GenresegError(f"--epochs must be >= 1, got {self.epochs}")
        from ..features.config import FAMILIES

        if self.features not in FAMILIES:
            raise GenresegError(f"unknown feature family {self.features!r} (expected {', '.join(FAMILIES)})")
        if self.threads < 1:
            raise GenresegError(f"--threads must be >= 1, got {self.threads}")

    @property
    def store_root(self) -> Path:
        """``--store``, else ``RESULTS/store`` (scattering) or ``RESULTS/store-<family>``."""
        if self.store:
            return Path(self.store)
        return Path(self.out) / ("store" if self.features == "scattering" else f"store-{self.features}")

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["store"] = str(self.store_root)
        return d


def command_line(options: ReproduceOptions) -> str:
    """The ``genreseg reproduce`` command that runs ``options`` (every option spelled out)."""
    import shlex

    o = options
    parts = ["genreseg", "reproduce", "--data", o.data, "--layout", o.layout, "--protocol", o.protocol,
             "--folds", o.folds, "--seeds", *o.seeds, "--grid", o.grid, "--preset", o.preset, "--features", o.features,
             "--store", o.store_root, "--workers", o.workers, "--device", o.device, "--threads", o.threads]
    if o.backend:
        parts += ["--backend", o.backend]
    if o.epochs is not None:
        parts += ["--epochs", o.epochs]
    if not o.baselines:
        parts.append("--no-baselines")
    if o.rows:
        parts += ["--rows", *o.rows]
    return " ".join(shlex.quote(str(x)) for x in parts + ["--out", o.out])
