"""Analysis figures: PNGs written and returned, which frames the strips pick, figure contents, input errors."""

import ast
import os
import pathlib
import tempfile

import numpy as np
from absl.testing import absltest, parameterized
from PIL import Image

from cfjax.analysis import plots
from cfjax.analysis.plots import (
    frame_strip,
    plot_clip_gates,
    plot_frame_scores,
    plot_grid_positions,
    plot_sgs_bins,
    strip_indices,
)

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
        returned = plot_frame_scores(_scores(), path, class_names=list("abcdef"), times=np.arange(T) / 4,
                                     top=3, ground_truth=truth, title="scores", dpi=DPI)
        self._check_png(returned, path)
        self._check_png(plot_frame_scores(_scores()[:, :2], pathlib.Path(path).with_name("two.png"), dpi=DPI),
                        pathlib.Path(path).with_name("two.png"))

    def test_frame_scores_uneven_times(self):
        path = os.path.join(_tempdir(self), "scores.png")
        times = np.array([0.0, 0.1, 0.5, 0.6, 1.5, 2.0, 2.1, 3.0])
        self._check_png(plot_frame_scores(_scores(), path, times=times, dpi=DPI), path)

    def test_grid_positions(self):
        path = os.path.join(_tempdir(self), "sub", "grid.png")
        grid = np.array([0.0, 0.3, 0.35, 0.4, 0.45, 1.0])
        returned = plot_grid_positions(_frames(), grid, path, segments=[[2, 3], [6, 7]], max_thumbnails=4,
                                       title="grid", dpi=DPI)
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
        returned = plot_clip_gates(_frames(5), [0.1, 0.6, 0.9, 0.5, 0.0], path,
                                   relevant=[False, True, True, False, False], threshold=0.5, title="g", dpi=DPI)
        self._check_png(returned, path)
        path2 = os.path.join(_tempdir(self), "gates.png")
        self._check_png(plot_clip_gates(_frames(1), [1.0], path2, dpi=DPI), path2)


class FigureContentTest(absltest.TestCase):
    def test_runs(self):
        self.assertEqual(plots._runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)), [(1, 2), (4, 4), (7, 7)])
        self.assertEqual(plots._runs(np.zeros(4, bool)), [])
        self.assertEqual(plots._runs(np.ones(3, bool)), [(0, 2)])

    def test_frame_scores_lines_and_shading(self):
        truth = np.zeros((T, 6), np.int32)
        truth[2:5, 4] = 1
        truth[[0, 7], 1] = 1
        truth[:, 0] = 1  # class 0 is not in the top 3: not shaded
        fig = plots._frame_scores_figure(_scores(), list("abcdef"), top=3, ground_truth=truth)
        ax_lines, ax_heat = fig.axes[:2]
        labels = [line.get_label().split(" ")[0] for line in ax_lines.get_lines()]
        self.assertEqual(labels, ["e", "b", "f"])  # classes 4, 1, 5 by max score
        spans = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax_lines.patches)
        self.assertEqual(spans, [(-0.5, 0.5), (1.5, 4.5), (6.5, 7.5)])
        self.assertEqual(ax_heat.get_images()[0].get_array().shape, (6, T))

    def test_frame_scores_top_clipped_to_classes(self):
        fig = plots._frame_scores_figure(_scores()[:, :2], top=5)
        self.assertLen(fig.axes[0].get_lines(), 2)

    def test_grid_marks_and_density(self):
        grid = np.array([0.0, 3 / 7, 3 / 7, 0.5, 1.0])  # positions 0, 3, 3, 3.5, 7
        fig = plots._grid_positions_figure(_frames(), grid, segments=[[3, 4]], max_thumbnails=4)
        ax_strip, ax_marks, ax_density = fig.axes
        xs = [segment[0, 0] for segment in ax_marks.collections[0].get_segments()]
        np.testing.assert_allclose(xs, [0, 3, 3, 3.5, 7])
        stairs = next(p for p in ax_density.patches if p.get_label() == "positions per bin")
        np.testing.assert_array_equal(stairs.get_data().values, [1, 0, 0, 2, 1, 0, 0, 1])
        self.assertIn("60% inside ground truth", ax_marks.get_title(loc="left"))
        self.assertEqual(ax_strip.get_images()[0].get_array().shape, (H, 4 * W, 3))

    def test_sgs_borders_and_count(self):
        bins = np.array([0, 0, 3, 3, 3, 5, -1, -1])
        fig = plots._sgs_bins_figure(_frames(), bins)
        ax_tiles, ax_band = fig.axes
        self.assertTrue(ax_tiles.get_title().startswith("B' = 3 distinct bins used; all 8 frames"))
        canvas = ax_tiles.get_images()[0].get_array()
        border = 2
        tile_w = W + 2 * border
        corners = [tuple(canvas[0, n * tile_w]) for n in range(T)]  # top-left border pixel of each tile
        self.assertEqual(len({corners[0], corners[1]}), 1)  # consecutive frames in one bin share a colour
        self.assertEqual(len({corners[2], corners[3], corners[4]}), 1)
        self.assertLen({corners[0], corners[2], corners[5], corners[6]}, 4)
        self.assertEqual(corners[6], tuple(np.round(np.array(plots._NO_BIN_COLOUR) * 255).astype(np.uint8)))
        np.testing.assert_array_equal(canvas[border : border + H, tile_w + border : tile_w + border + W], _frames()[1])
        self.assertEqual(ax_band.get_images()[0].get_array().shape, (1, T, 3))

    def test_sgs_subsamples_to_32(self):
        bins = np.arange(40) // 7
        fig = plots._sgs_bins_figure(_frames(40, 8, 8), bins)
        captions = [text.get_text() for text in fig.axes[0].texts]
        expected = strip_indices(40, 32)
        self.assertEqual(captions, [f"t{t} b{t // 7}" for t in expected])
        self.assertIn("B' = 6 distinct bins used; 32 of 40 frames", fig.axes[0].get_title())

    def test_clip_gate_bars(self):
        gates = [0.1, 0.6, 0.9, 0.5, 0.0]
        fig = plots._clip_gates_figure(_frames(5), gates, relevant=[0, 1, 1, 0, 0], threshold=0.5)
        ax_bars = fig.axes[1]
        bars = ax_bars.patches
        np.testing.assert_allclose([b.get_height() for b in bars], gates)
        self.assertEqual([b.get_hatch() or "" for b in bars], ["", "//", "//", "", ""])
        orange = [b.get_facecolor()[:3] == bars[1].get_facecolor()[:3] for b in bars]
        self.assertEqual(orange, [False, True, True, True, False])  # gate >= threshold
        self.assertIn("3 of 5 clips selected; precision 0.67, recall 1.00", ax_bars.get_title(loc="left"))
        np.testing.assert_allclose(ax_bars.get_lines()[0].get_ydata(), [0.5, 0.5])

    def test_no_pyplot_jax_or_flax(self):
        tree = ast.parse(pathlib.Path(plots.__file__).read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        self.assertFalse({m for m in modules if m.split(".")[0] in ("jax", "flax") or "pyplot" in m})


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


if __name__ == "__main__":
    absltest.main()
