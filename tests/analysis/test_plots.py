"""Analysis figures: PNGs written and returned, which frames the strips pick, figure contents, layout (titles,
axis labels, legends off the data, nothing outside the canvas) of every plot kind, input errors."""

import ast
import os
import pathlib
import tempfile
from unittest import mock

import matplotlib
import numpy as np
from absl.testing import absltest, parameterized
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from cfjax.analysis import plots
from cfjax.analysis.plots import (
    clip_cams,
    clip_gates,
    frame_scores,
    frame_strip,
    grid_positions,
    plot_clip_cams,
    plot_clip_gates,
    plot_frame_scores,
    plot_grid_positions,
    plot_sgs_bins,
    score_text,
    sgs_bins,
    strip_indices,
    tubes,
)

matplotlib.use("Agg")

DPI = 30
T, H, W = 8, 16, 16


def _frames(num=T, height=H, width=W):
    """Frame t is filled with 10 t in red; green and blue carry the row and column, so tiles are distinguishable."""
    frames = np.zeros((num, height, width, 3), np.uint8)
    frames[..., 0] = (10 * np.arange(num))[:, None, None]
    frames[..., 1] = np.arange(height)[None, :, None]
    frames[..., 2] = np.arange(width)[None, None, :]
    return frames


def _tempdir(test):
    """A fresh folder removed after ``test``."""
    return test.enter_context(tempfile.TemporaryDirectory())


def _scores():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 0.5, (T, 6))
    scores[2:5, 4] = [0.9, 1.0, 0.8]  # class maxima: 4 > 1 > 5 > the rest
    scores[6, 1] = 0.95
    scores[0, 5] = 0.7
    return scores


class FrameStripTest(parameterized.TestCase):
    @parameterized.parameters(
        (8, 3, [0, 4, 7]),  # 3.5 rounds up
        (8, 4, [0, 2, 5, 7]),  # 0, 2.33, 4.67, 7
        (8, 1, [3]),  # the middle frame
        (9, 1, [4]),
        (8, 8, list(range(8))),
        (3, 5, [0, 1, 1, 2, 2]),  # more thumbnails than frames repeat frames
        (1, 3, [0, 0, 0]),
        (100, 2, [0, 99]),
    )
    def test_indices(self, num_frames, count, expected):
        np.testing.assert_array_equal(strip_indices(num_frames, count), expected)

    def test_strip_values(self):
        frames = _frames()
        strip = frame_strip(frames, 3)
        self.assertEqual(strip.shape, (H, 3 * W, 3))
        self.assertEqual(strip.dtype, np.uint8)
        for j, t in enumerate([0, 4, 7]):
            np.testing.assert_array_equal(strip[:, j * W : (j + 1) * W], frames[t])
        np.testing.assert_array_equal(frame_strip(frames, 1), frames[3])
        np.testing.assert_array_equal(frame_strip(frames, T), np.concatenate(list(frames), axis=1))

    @parameterized.named_parameters(
        ("ndim", np.zeros((T, H, W), np.uint8), 2, "frames"),
        ("channels", np.zeros((T, H, W, 4), np.uint8), 2, "frames"),
        ("float", np.zeros((T, H, W, 3), np.float32), 2, "frames: expected dtype uint8"),
        ("empty", np.zeros((0, H, W, 3), np.uint8), 2, "frames"),
        ("count_zero", _frames(), 0, "count"),
        ("count_float", _frames(), 2.0, "count"),
    )
    def test_bad_input(self, frames, count, name):
        with self.assertRaisesRegex(ValueError, f"^{name}"):
            frame_strip(frames, count)


class PngTest(parameterized.TestCase):
    def _check_png(self, returned, expected):
        self.assertIsInstance(returned, pathlib.Path)
        self.assertEqual(returned, pathlib.Path(expected))
        with Image.open(returned) as image:
            self.assertEqual(image.format, "PNG")
            self.assertIn(image.mode, ("RGB", "RGBA"))
            self.assertGreater(image.size[0], 0)
            self.assertGreater(image.size[1], 0)
            image.load()

    def test_frame_scores(self):
        path = os.path.join(_tempdir(self), "new", "dir", "scores.png")  # parents created
        truth = np.zeros((T, 6), np.int32)
        truth[2:5, 4] = 1
        returned = plot_frame_scores(
            _scores(),
            path,
            class_names=list("abcdef"),
            times=np.arange(T) / 4,
            top=3,
            ground_truth=truth,
            title="scores",
            dpi=DPI,
        )
        self._check_png(returned, path)
        self._check_png(
            plot_frame_scores(_scores()[:, :2], pathlib.Path(path).with_name("two.png"), dpi=DPI),
            pathlib.Path(path).with_name("two.png"),
        )

    def test_frame_scores_uneven_times(self):
        path = os.path.join(_tempdir(self), "scores.png")
        times = np.array([0.0, 0.1, 0.5, 0.6, 1.5, 2.0, 2.1, 3.0])
        self._check_png(plot_frame_scores(_scores(), path, times=times, dpi=DPI), path)

    def test_grid_positions(self):
        path = os.path.join(_tempdir(self), "sub", "grid.png")
        grid = np.array([0.0, 0.3, 0.35, 0.4, 0.45, 1.0])
        returned = plot_grid_positions(
            _frames(), grid, path, segments=[[2, 3], [6, 7]], max_thumbnails=4, title="grid", dpi=DPI
        )
        self._check_png(returned, path)

    def test_grid_positions_single_frame(self):
        path = os.path.join(_tempdir(self), "grid.png")
        self._check_png(plot_grid_positions(_frames(1), [0.0, 0.5, 1.0], path, segments=[], dpi=DPI), path)

    def test_sgs_bins(self):
        path = os.path.join(_tempdir(self), "sub", "sgs.png")
        returned = plot_sgs_bins(_frames(), [0, 0, 1, 1, 1, 2, -1, -1], path, title="sgs", dpi=DPI)
        self._check_png(returned, path)

    def test_sgs_bins_subsampled(self):
        path = os.path.join(_tempdir(self), "sgs.png")
        self._check_png(plot_sgs_bins(_frames(40, 8, 8), np.arange(40) // 7, path, dpi=DPI), path)

    def test_clip_gates(self):
        path = os.path.join(_tempdir(self), "sub", "gates.png")
        returned = plot_clip_gates(
            _frames(5),
            [0.1, 0.6, 0.9, 0.5, 0.0],
            path,
            relevant=[False, True, True, False, False],
            threshold=0.5,
            title="g",
            dpi=DPI,
        )
        self._check_png(returned, path)
        path2 = os.path.join(_tempdir(self), "gates.png")
        self._check_png(plot_clip_gates(_frames(1), [1.0], path2, dpi=DPI), path2)


class FigureContentTest(absltest.TestCase):
    def test_clip_cams_rows_and_map_steps(self):
        cams = np.zeros((2, 2, 3, 3))
        cams[:, 1] = 1.0  # map step 1 covers clip steps 4..7 of 8
        fig = clip_cams._clip_cams_figure(
            np.stack([_frames(), _frames()]),
            cams,
            clip_indices=[3, 7],
            gates=[0.9, 0.2],
            frame_indices=np.stack([np.arange(8), np.arange(8, 16)]),
        )
        thumbs = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        self.assertLen(thumbs, 8)  # 2 clips x 4 frames (steps 0, 2, 5, 7)
        self.assertEqual([ax.get_title() for ax in thumbs[:4]], ["#0", "#2", "#5", "#7"])
        self.assertEqual([float(ax.get_images()[1].get_array().max()) for ax in thumbs[:4]], [0, 0, 1, 1])
        self.assertEqual(thumbs[0].get_ylabel(), "clip 3\ngate 0.90")
        self.assertIn("top-gated", thumbs[4].get_ylabel())  # 0.2: shown, not selected
        self.assertIn("no clip has gate > 0.5", fig.get_suptitle())

    def test_runs(self):
        self.assertEqual(frame_scores._runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)), [(1, 2), (4, 4), (7, 7)])
        self.assertEqual(frame_scores._runs(np.zeros(4, bool)), [])
        self.assertEqual(frame_scores._runs(np.ones(3, bool)), [(0, 2)])

    def test_frame_scores_lines_and_shading(self):
        truth = np.zeros((T, 6), np.int32)
        truth[2:5, 4] = 1
        truth[[0, 7], 1] = 1
        truth[:, 0] = 1  # class 0 is not in the top 3: not shaded
        fig = frame_scores._frame_scores_figure(_scores(), list("abcdef"), top=3, ground_truth=truth)
        ax_lines, ax_heat = fig.axes[:2]
        labels = [line.get_label().split(" ")[0] for line in ax_lines.get_lines()]
        self.assertEqual(labels, ["e", "b", "f"])  # classes 4, 1, 5 by max score
        spans = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax_lines.patches)
        self.assertEqual(spans, [(-0.5, 0.5), (1.5, 4.5), (6.5, 7.5)])
        self.assertEqual(ax_heat.get_images()[0].get_array().shape, (6, T))

    def test_frame_scores_top_clipped_to_classes(self):
        fig = frame_scores._frame_scores_figure(_scores()[:, :2], top=5)
        self.assertLen(fig.axes[0].get_lines(), 2)

    def test_grid_marks_and_density(self):
        grid = np.array([0.0, 3 / 7, 3 / 7, 0.5, 1.0])  # positions 0, 3, 3, 3.5, 7
        fig = grid_positions._grid_positions_figure(_frames(), grid, segments=[[3, 4]], max_thumbnails=4)
        ax_strip, ax_marks, ax_density = fig.axes
        xs = [segment[0, 0] for segment in ax_marks.collections[0].get_segments()]
        np.testing.assert_allclose(xs, [0, 3, 3, 3.5, 7])
        stairs = next(p for p in ax_density.patches if p.get_label() == "positions per bin")
        np.testing.assert_array_equal(stairs.get_data().values, [1, 0, 0, 2, 1, 0, 0, 1])
        self.assertIn("60% inside ground truth", ax_marks.get_title(loc="left"))
        self.assertEqual(ax_strip.get_images()[0].get_array().shape, (H, 4 * W, 3))

    def test_sgs_borders_and_count(self):
        bins = np.array([0, 0, 3, 3, 3, 5, -1, -1])
        fig = sgs_bins._sgs_bins_figure(_frames(), bins)
        ax_tiles, ax_band = fig.axes
        self.assertIn("B' = 3 distinct SGS bins used; all 8 frames", ax_tiles.get_title().replace("\n", " "))
        canvas = ax_tiles.get_images()[0].get_array()
        border = 2
        tile_w = W + 2 * border
        corners = [tuple(canvas[0, n * tile_w]) for n in range(T)]  # top-left border pixel of each tile
        self.assertEqual(len({corners[0], corners[1]}), 1)  # consecutive frames in one bin share a colour
        self.assertEqual(len({corners[2], corners[3], corners[4]}), 1)
        self.assertLen({corners[0], corners[2], corners[5], corners[6]}, 4)
        self.assertEqual(corners[6], tuple(np.round(np.array(sgs_bins.NO_BIN_COLOUR) * 255).astype(np.uint8)))
        np.testing.assert_array_equal(canvas[border : border + H, tile_w + border : tile_w + border + W], _frames()[1])
        self.assertEqual(ax_band.get_images()[0].get_array().shape, (1, T, 3))

    def test_sgs_subsamples_to_32(self):
        bins = np.arange(40) // 7
        fig = sgs_bins._sgs_bins_figure(_frames(40, 8, 8), bins)
        captions = [text.get_text() for text in fig.axes[0].texts]
        expected = strip_indices(40, 32)
        self.assertEqual(captions, [f"t{t}: bin {t // 7}" for t in expected])
        self.assertIn("B' = 6 distinct SGS bins used; 32 of 40 frames", fig.axes[0].get_title().replace("\n", " "))

    def test_clip_gate_bars(self):
        gates = [0.1, 0.6, 0.9, 0.5, 0.0]
        fig = clip_gates._clip_gates_figure(_frames(5), gates, relevant=[0, 1, 1, 0, 0], threshold=0.5)
        ax_bars = fig.axes[1]
        bars = ax_bars.patches
        np.testing.assert_allclose([b.get_height() for b in bars], gates)
        self.assertEqual([b.get_hatch() or "" for b in bars], ["", "//", "//", "", ""])
        orange = [b.get_facecolor()[:3] == bars[1].get_facecolor()[:3] for b in bars]
        self.assertEqual(orange, [False, True, True, True, False])  # gate >= threshold
        self.assertIn("3 of 5 clips selected; precision 0.67, recall 1.00", ax_bars.get_title(loc="left"))
        np.testing.assert_allclose(ax_bars.get_lines()[0].get_ydata(), [0.5, 0.5])

    def test_tube_label_inside_the_axes_below_the_title(self):
        boxes = np.tile(np.array([2.0, 0.0, 30.0, 20.0]), (1, 4, 1))  # touches the frame's top edge
        fig = tubes._tubes_figure(_frames(4, 32, 48), refined=(boxes, np.ones((1, 4), bool)), labels=["run 0.83"])
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        ax = fig.axes[0]
        (label,) = ax.texts
        (title,) = [t for t in ax.get_children() if isinstance(t, Text) and t.get_text().endswith("tube boxes")]
        box, frame = label.get_window_extent(renderer), ax.get_window_extent(renderer)
        self.assertEqual(label.get_text(), "run 0.83")
        self.assertTrue(frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1)
        self.assertFalse(box.overlaps(title.get_window_extent(renderer)))

    def test_no_pyplot_jax_or_flax(self):
        files = sorted(pathlib.Path(plots.__file__).parent.glob("*.py"))
        self.assertGreater(len(files), 1)
        modules = set()
        for node in (n for f in files for n in ast.walk(ast.parse(f.read_text()))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        self.assertFalse({m for m in modules if m.split(".")[0] in ("jax", "flax") or "pyplot" in m})


# ----------------------------------------------------------------------------- layout of every plot kind

_LONG_TITLE = (
    "kinetics_video_with_a_rather_long_file_name_abc123: top-3 by mean window score: riding mechanical "
    "bull 0.81, playing didgeridoo 0.0084, arranging flowers 0.0081; true: riding mechanical bull"
)


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _window_scores_case():
    """ATFR on Kinetics-400 as predict plots it: 10 windows, 400 classes, fps known."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 0.3, (10, 400))
    logits[3:5, 300] += 3.0
    logits[3:5, 302] += 2.5  # a top class two rows from another: their labels would overlap
    names = [f"kinetics class number {c}" for c in range(400)]
    return {
        "scores": _softmax(logits),
        "class_names": names,
        "times": np.linspace(12.5, 287.5, 10),
        "fps": 30.0,
        "rank_by": "mean",
        "title": _LONG_TITLE,
    }


def _frame_scores_case():
    """Coarse-Fine on Charades: 64 frames, 157 classes with long names, ground truth, no fps."""
    rng = np.random.default_rng(2)
    scores = 1 / (1 + np.exp(-rng.normal(-4, 1, (64, 157))))
    scores[10:30, 5] = 0.7
    truth = np.zeros((64, 157), np.int32)
    truth[12:28, 5] = 1
    names = [f"c{c:03d} Someone is sitting at a table eating a sandwich" for c in range(157)]
    return {
        "scores": scores,
        "class_names": names,
        "times": np.arange(0, 128, 2.0),
        "ground_truth": truth,
        "title": _LONG_TITLE.replace("mean window", "max frame"),
    }


def _grid_case():
    grid = np.sort(np.random.default_rng(3).uniform(0, 1, 33))
    return {
        "frames": _frames(64, 24, 32),
        "grid": grid,
        "segments": [[12, 27], [40, 44]],
        "title": _LONG_TITLE,
        "frame_indices": np.arange(0, 128, 2),
        "num_video_frames": 140,
        "fps": 24.0,
    }


def _sgs_case():
    bins = np.repeat(np.arange(6), [4, 5, 3, 6, 4, 4])
    bins[-2:] = -1
    return {
        "frames": _frames(26, 24, 24),
        "bins": bins,
        "frame_indices": np.where(bins >= 0, 130 + 6 * np.arange(26), -1),
        "num_video_frames": 300,
        "fps": 30.0,
        "title": _LONG_TITLE,
    }


def _tubes_case():
    boxes = np.tile(np.array([10.0, 8.0, 40.0, 40.0]), (2, 16, 1))
    boxes[1] += 3
    valid = np.ones((2, 16), bool)
    return {
        "frames": _frames(16, 48, 64),
        "refined": (boxes[:1], valid[:1]),
        "coarse": (boxes[1:], valid[1:]),
        "gt": (boxes[:1] - 2, valid[:1]),
        "labels": ["Running 0.0041"],
        "frame_numbers": np.arange(1, 32, 2),
        "title": _LONG_TITLE,
    }


def _clip_cams_case():
    """GCF-Net as predict plots it: two gated clips of 16 frames at 112 x 150, 2 x 4 x 4 maps, fps known."""
    cams = np.random.default_rng(4).uniform(0, 1, (2, 2, 4, 4))
    return {
        "clips": np.stack([_frames(16, 112, 150)] * 2),
        "cams": cams / cams.max(axis=(1, 2, 3), keepdims=True),
        "clip_indices": [2, 7],
        "gates": [0.93, 0.61],
        "frame_indices": np.stack([np.arange(32, 48), np.arange(112, 128)]),
        "fps": 25.0,
        "title": _LONG_TITLE,
    }


# Every public plot function: the realistic inputs it is rendered with (predict's long titles included).
LAYOUT_CASES = {
    "plot_frame_scores": {
        "windows_400_classes": _window_scores_case,
        "frames_157_classes": _frame_scores_case,
        "tiny": lambda: {"scores": _scores()[:1, :2]},
    },
    "plot_grid_positions": {"charades": _grid_case, "one_frame": lambda: {"frames": _frames(1), "grid": [0.0, 1.0]}},
    "plot_sgs_bins": {
        "window": _sgs_case,
        "subsampled": lambda: {"frames": _frames(40, 8, 8), "bins": np.arange(40) // 7},
    },
    "plot_clip_gates": {
        "eight": lambda: {
            "thumbnails": _frames(8),
            "gates": np.linspace(0, 1, 8),
            "relevant": np.arange(8) % 2,
            "title": _LONG_TITLE,
        },
        "one": lambda: {"thumbnails": _frames(1), "gates": [1.0]},
    },
    "plot_tubes": {"ucf_sports": _tubes_case, "no_tubes": lambda: {"frames": _frames(3)}},
    "plot_metrics": {
        "train_and_eval": lambda: {
            "records": [{"step": i, "split": "train", "loss": 2.0 / i, "lr": 0.1} for i in range(1, 11)]
            + [{"step": 10, "split": "eval", "loss": 0.5, "top1": 0.25}],
            "title": _LONG_TITLE,
        },
        "one_point": lambda: {"records": [{"step": 1, "split": "eval", "top1": 1.0}]},
    },
    "plot_clip_cams": {
        "two_gated": _clip_cams_case,
        "top_gated": lambda: {"clips": _frames(4)[None], "cams": np.ones((1, 1, 1, 1)), "gates": [0.1]},
    },
}
_TOLERANCE_IN = 0.02


def _rendered_figure(test, name, kwargs) -> Figure:
    """Calls ``plots.<name>(**kwargs)`` (PNG into a temp dir) and returns the figure it saved, drawn on Agg."""
    saved = []
    savefig = Figure.savefig

    def capture(fig, *args, **kw):
        saved.append(fig)
        return savefig(fig, *args, **kw)

    path = pathlib.Path(_tempdir(test)) / f"{name}.png"
    with mock.patch.object(Figure, "savefig", capture):
        getattr(plots, name)(path=path, dpi=DPI, **kwargs)
    test.assertTrue(path.is_file())
    test.assertLen(saved, 1)
    saved[0].canvas.draw()
    return saved[0]


def _titles(ax) -> list[str]:
    return [ax.get_title(loc=loc) for loc in ("left", "center", "right")]


class LayoutTest(parameterized.TestCase):
    def test_every_plot_kind_has_cases(self):
        kinds = {name for name in plots.__all__ if name.startswith("plot_")}
        self.assertEqual(kinds, set(LAYOUT_CASES), "give each public plot function inputs in LAYOUT_CASES")

    @parameterized.named_parameters(
        (f"{name}_{case}", name, make) for name, cases in LAYOUT_CASES.items() for case, make in cases.items()
    )
    def test_layout(self, name, make):
        fig = _rendered_figure(self, name, make())
        renderer = fig.canvas.get_renderer()
        self.assertTrue(
            fig.get_suptitle().strip() or any(t.strip() for ax in fig.axes for t in _titles(ax)), "no title"
        )
        for ax in fig.axes:
            self._check_labels(ax)
        tight, canvas = fig.get_tightbbox(renderer), fig.bbox_inches  # inches
        self.assertGreaterEqual(tight.x0, canvas.x0 - _TOLERANCE_IN, "something sticks out left")
        self.assertGreaterEqual(tight.y0, canvas.y0 - _TOLERANCE_IN, "something sticks out below")
        self.assertLessEqual(tight.x1, canvas.x1 + _TOLERANCE_IN, "something sticks out right")
        self.assertLessEqual(tight.y1, canvas.y1 + _TOLERANCE_IN, "something sticks out above")
        data_boxes = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_label() != "<colorbar>"]
        legends = [(ax.get_legend(), [box]) for ax, box in zip(fig.axes, data_boxes) if ax.get_legend()]
        legends += [(legend, data_boxes) for legend in fig.legends]
        for legend, boxes in legends:
            extent = legend.get_window_extent(renderer)
            for box in boxes:
                overlap = extent.intersection(extent, box)
                self.assertTrue(
                    overlap is None or min(overlap.width, overlap.height) < 1,
                    f"legend {[t.get_text() for t in legend.get_texts()]} covers an axes",
                )

    def _check_labels(self, ax):
        what = f"axes {ax.get_label() or ax}"
        if ax.get_label() == "<colorbar>":
            self.assertTrue(ax.get_xlabel() or ax.get_ylabel(), f"{what}: colorbar without a label")
            return
        if not ax.has_data():
            return
        if ax.get_images() and (not ax.axison or len(ax.get_yticks()) == 0):  # an image strip without ticks
            self.assertTrue(any(_titles(ax)) or ax.get_xlabel() or ax.get_ylabel(), f"{what}: strip without a label")
            return
        self.assertTrue(ax.get_ylabel(), f"{what}: no y label")
        renderer = ax.figure.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]
        for a, b in zip(boxes, boxes[1:]):
            overlap = a.intersection(a, b)
            self.assertTrue(overlap is None or overlap.height < 1, f"{what}: y tick labels overlap")
        shared = ax.get_shared_x_axes().get_siblings(ax)  # panels sharing x are labelled once, at the bottom
        self.assertTrue(any(a.get_xlabel() for a in shared), f"{what}: no x label")


class TextTest(parameterized.TestCase):
    @parameterized.parameters((0.8123, "0.81"), (0.0025, "0.0025"), (3.1e-05, "3.1e-05"), (0.0, "0.00"), (1.0, "1.00"))
    def test_score_text(self, value, text):
        self.assertEqual(score_text(value), text)

    def test_frame_range(self):
        self.assertEqual(
            plots.frame_range_text(np.array([32, 34, 36, -1]), 120, None), "frames 32-36 of 120 (stride 2), 1 padded"
        )
        self.assertEqual(plots.frame_range_text(np.array([30, 60]), None, 30.0), "frames 30-60 (stride 30; 1.0-2.0 s)")
        self.assertEqual(plots.frame_range_text(None, 50, None, count=8), "8 frames of 50")

    def test_title_wrapped_to_the_figure(self):
        fig = frame_scores._frame_scores_figure(_scores(), title=_LONG_TITLE)
        lines = fig.get_suptitle().split("\n")
        self.assertGreater(len(lines), 1)
        self.assertEqual(" ".join(lines), _LONG_TITLE)

    def test_frame_scores_axis_in_seconds_with_fps(self):
        fig = frame_scores._frame_scores_figure(_scores(), times=np.arange(T) * 2.0, fps=4.0)
        self.assertEqual(fig.axes[1].get_xlabel(), "time (s)")
        np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), np.arange(T) / 2)
        self.assertEqual(frame_scores._frame_scores_figure(_scores()).axes[1].get_xlabel(), "frame")

    def test_frame_scores_legend_ranked_by_mean(self):
        scores = np.array([[0.0, 0.5, 0.1], [0.9, 0.5, 0.1]])  # max: class 0 first; mean: class 1 first
        fig = frame_scores._frame_scores_figure(scores, list("abc"), rank_by="mean", top=2)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        self.assertEqual(labels, ["b (mean 0.50)", "a (mean 0.45)"])
        fig = frame_scores._frame_scores_figure(scores, list("abc"), rank_by="max", top=2)
        self.assertEqual([t.get_text() for t in fig.axes[0].get_legend().get_texts()], ["a (max 0.90)", "b (max 0.50)"])

    def test_sgs_key_band_and_frames(self):
        bins = np.array([0, 0, 3, 3, 3, 5, -1, -1])
        fig = sgs_bins._sgs_bins_figure(
            _frames(), bins, frame_indices=np.array([32, 34, 36, 38, 40, 42, -1, -1]), num_video_frames=120
        )
        ax_tiles, ax_band = fig.axes
        self.assertEqual(
            [t.get_text() for t in fig.legends[0].get_texts()], ["bin 0", "bin 3", "bin 5", "none / padded"]
        )
        self.assertEqual([t.get_text() for t in ax_band.texts], ["0", "3", "5"])
        self.assertTrue(ax_tiles.get_title().startswith("frames 32-42 of 120 (stride 2), 2 padded."))
        self.assertEqual(ax_tiles.texts[0].get_text(), "#32: bin 0")
        self.assertEqual(ax_tiles.texts[-1].get_text(), "pad: none")


class BadInputTest(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(_tempdir(self), "out", "x.png")

    def _raises(self, name, function, *args, **kwargs):
        with self.assertRaisesRegex(ValueError, f"^{name}:"):
            function(*args, **kwargs)
        self.assertFalse(os.path.exists(os.path.dirname(self.path)))  # nothing written

    @parameterized.named_parameters(
        ("scores_ndim", "scores", {"scores": np.zeros(T)}),
        ("scores_dtype", "scores", {"scores": np.full((T, 3), "a")}),
        ("scores_nan", "scores", {"scores": np.full((T, 3), np.nan)}),
        ("class_names_length", "class_names", {"class_names": ["a", "b"]}),
        ("class_names_str", "class_names", {"class_names": "abcdef"}),
        ("class_names_type", "class_names", {"class_names": list(range(6))}),
        ("times_length", "times", {"times": np.arange(T - 1)}),
        ("times_not_increasing", "times", {"times": np.array([0, 1, 2, 2, 3, 4, 5, 6])}),
        ("top", "top", {"top": 0}),
        ("ground_truth_shape", "ground_truth", {"ground_truth": np.zeros((T, 5))}),
        ("ground_truth_values", "ground_truth", {"ground_truth": np.full((T, 6), 2)}),
        ("path", "path", {"path": None}),
        ("dpi", "dpi", {"dpi": 0}),
    )
    def test_frame_scores(self, name, override):
        kwargs = {"scores": _scores(), "path": self.path} | override
        self._raises(name, plot_frame_scores, **kwargs)

    @parameterized.named_parameters(
        ("frames_ndim", "frames", {"frames": np.zeros((T, H, W), np.uint8)}),
        ("frames_dtype", "frames", {"frames": np.zeros((T, H, W, 3), np.float32)}),
        ("grid_not_monotone", "grid", {"grid": [0.0, 0.6, 0.5, 1.0]}),
        ("grid_below_0", "grid", {"grid": [-0.1, 0.5, 1.0]}),
        ("grid_above_1", "grid", {"grid": [0.0, 0.5, 1.01]}),
        ("grid_ndim", "grid", {"grid": np.zeros((2, 3))}),
        ("grid_empty", "grid", {"grid": []}),
        ("segments_shape", "segments", {"segments": [1, 2, 3]}),
        ("segments_float", "segments", {"segments": [[1.0, 2.0]]}),
        ("segments_past_end", "segments", {"segments": [[2, T]]}),
        ("segments_reversed", "segments", {"segments": [[4, 2]]}),
        ("segments_negative", "segments", {"segments": [[-1, 2]]}),
        ("max_thumbnails", "max_thumbnails", {"max_thumbnails": 0}),
    )
    def test_grid_positions(self, name, override):
        kwargs = {"frames": _frames(), "grid": [0.0, 0.5, 1.0], "path": self.path} | override
        self._raises(name, plot_grid_positions, **kwargs)

    @parameterized.named_parameters(
        ("frames_ndim", "frames", {"frames": np.zeros((T, H, W, 3, 1), np.uint8)}),
        ("frames_dtype", "frames", {"frames": np.zeros((T, H, W, 3), np.int32)}),
        ("bins_length", "bins", {"bins": np.zeros(T - 1, np.int32)}),
        ("bins_ndim", "bins", {"bins": np.zeros((T, 1), np.int32)}),
        ("bins_dtype", "bins", {"bins": np.zeros(T, np.float32)}),
        ("bins_below_minus_1", "bins", {"bins": np.full(T, -2)}),
    )
    def test_sgs_bins(self, name, override):
        kwargs = {"frames": _frames(), "bins": np.zeros(T, np.int32), "path": self.path} | override
        self._raises(name, plot_sgs_bins, **kwargs)

    @parameterized.named_parameters(
        ("thumbnails_ndim", "thumbnails", {"thumbnails": np.zeros((4, H, W), np.uint8)}),
        ("thumbnails_dtype", "thumbnails", {"thumbnails": np.zeros((4, H, W, 3), np.float64)}),
        ("gates_length", "gates", {"gates": [0.5, 0.5, 0.5]}),
        ("gates_ndim", "gates", {"gates": np.zeros((4, 1))}),
        ("gates_range", "gates", {"gates": [0.5, 1.5, 0.5, 0.5]}),
        ("relevant_length", "relevant", {"relevant": [True, False]}),
        ("relevant_values", "relevant", {"relevant": [0, 1, 2, 0]}),
        ("threshold", "threshold", {"threshold": 1.5}),
    )
    def test_clip_gates(self, name, override):
        kwargs = {"thumbnails": _frames(4), "gates": [0.1, 0.2, 0.7, 0.9], "path": self.path} | override
        self._raises(name, plot_clip_gates, **kwargs)

    @parameterized.named_parameters(
        ("clips_ndim", "clips", {"clips": _frames(4)}),
        ("clips_dtype", "clips", {"clips": np.zeros((2, 4, H, W, 3), np.float32)}),
        ("cams_count", "cams", {"cams": np.zeros((3, 1, 2, 2))}),
        ("cams_range", "cams", {"cams": np.full((2, 1, 2, 2), 1.5)}),
        ("clip_indices", "clip_indices", {"clip_indices": [0.5, 1.0]}),
        ("gates_length", "gates", {"gates": [0.7]}),
        ("selected_values", "selected", {"selected": [0, 2]}),
        ("frame_indices_shape", "frame_indices", {"frame_indices": np.zeros((2, 3), np.int64)}),
        ("frames_per_clip", "frames_per_clip", {"frames_per_clip": 0}),
    )
    def test_clip_cams(self, name, override):
        kwargs = {"clips": np.stack([_frames(4)] * 2), "cams": np.zeros((2, 1, 2, 2)), "path": self.path} | override
        self._raises(name, plot_clip_cams, **kwargs)


if __name__ == "__main__":
    absltest.main()
