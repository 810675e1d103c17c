"""Experiments: ``genreseg reproduce``, the paper's Tables 2 and 3 and two baselines, end to end.

* :mod:`~genreseg.experiments.config` — the grids, the rows of the tables, the run's options;
* :mod:`~genreseg.experiments.run` — the run loop (data, features, folds, rows, baselines,
  ``results.json``);
* :mod:`~genreseg.experiments.report` — the reading in words, the figures and ``REPORT.md``.

The statistics (mean ± std over folds, paired comparisons) are :mod:`genreseg.evaluation`'s;
the command-line parser is :mod:`genreseg.cli`'s.
"""

from .config import (GRIDS, PAPER_ROWS, Grid, ModelRow, ReproduceOptions, command_line, frame_config_for,
                     model_rows, segment_config_for, svm_grid_for)
from .run import EXIT_OK, EXIT_PARTIAL, RESULTS_FORMAT, run_reproduce

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "GRIDS", "PAPER_ROWS", "RESULTS_FORMAT", "Grid", "ModelRow",
           "ReproduceOptions", "command_line", "frame_config_for", "model_rows", "run_reproduce",
           "segment_config_for", "svm_grid_for"]
