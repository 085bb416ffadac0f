"""Figures for inspecting what the models look at: frame scores, Coarse-Fine grid
positions, SGS bins, clip gates, Grad-CAM on gated clips, action tubes and training curves
(one module per figure kind).

Only numpy and matplotlib: figures are built as ``matplotlib.figure.Figure`` on
an Agg canvas (no pyplot, no global backend switch), written as PNG, and each
``plot_*`` function returns the written ``pathlib.Path`` (parent folders are
created). Frames must be ``uint8`` RGB ``[T, H, W, 3]``. Titles are wrapped to the
figure's width and legends sit outside the axes they describe.

    >>> from cfjax.analysis.plots import plot_grid_positions
    >>> plot_grid_positions(frames, grid, "out/grid.png", segments=[[10, 25]])
"""

from cfjax.analysis.plots.clip_cams import plot_clip_cams
from cfjax.analysis.plots.clip_gates import plot_clip_gates
from cfjax.analysis.plots.common import frame_range_text, frame_strip, score_text, strip_indices
from cfjax.analysis.plots.frame_scores import plot_frame_scores
from cfjax.analysis.plots.grid_positions import plot_grid_positions
from cfjax.analysis.plots.metrics import plot_metrics
from cfjax.analysis.plots.sgs_bins import plot_sgs_bins
from cfjax.analysis.plots.tubes import plot_tubes

__all__ = [
    "frame_range_text",
    "frame_strip",
    "plot_clip_cams",
    "plot_clip_gates",
    "plot_frame_scores",
    "plot_grid_positions",
    "plot_metrics",
    "plot_sgs_bins",
    "plot_tubes",
    "score_text",
    "strip_indices",
]
