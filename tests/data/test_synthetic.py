"""Synthetic video generators: determinism, shapes, and label semantics."""

import numpy as np
from absl.testing import absltest, parameterized

from cfjax.data import synthetic

GENERATORS = {
    "classification": synthetic.classification,
    "temporal_detection": synthetic.temporal_detection,
    "clip_set": synthetic.clip_set,
    "tubes": synthetic.tubes,
}


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def _changed(frames):
    """bool [T - 1]: frame t + 1 differs from frame t anywhere."""
    return np.any(frames[1:] != frames[:-1], axis=(1, 2, 3))


class DeterminismTest(parameterized.TestCase):
    @parameterized.named_parameters(*[(k, k) for k in GENERATORS])
    def test_seed_determines_output(self, kind):
        gen = GENERATORS[kind]
        _assert_same(gen(3), gen(3))
        _assert_same(gen((1, 2)), gen([1, 2]))
        self.assertFalse(np.array_equal(gen(3)["frames"], gen(4)["frames"]))


class ClassificationTest(parameterized.TestCase):
    def test_shapes_and_defaults(self):
        s = synthetic.classification(0)
        self.assertEqual(s["frames"].shape, (32, 64, 64, 3))
        self.assertEqual(s["frames"].dtype, np.uint8)
        self.assertIn(s["label"], range(synthetic.NUM_CLASSES))
        self.assertTrue(0.0 <= s["redundancy"] <= 0.5 + 1 / 31)
        s = synthetic.classification(0, num_frames=12, height=40, width=56, label=5)
        self.assertEqual(s["frames"].shape, (12, 40, 56, 3))
        self.assertEqual(s["label"], 5)

    @parameterized.product(redundancy=[0.0, 0.25, 0.5, 0.9], label=list(range(8)))
    def test_redundancy_is_fraction_of_identical_frames(self, redundancy, label):
        s = synthetic.classification(label * 10 + 1, redundancy=redundancy, label=label)
        same = ~_changed(s["frames"])
        T = s["frames"].shape[0]
        self.assertEqual(same.sum(), round(redundancy * (T - 1)))
        self.assertAlmostEqual(s["redundancy"], same.sum() / (T - 1))
        # The static part is one contiguous hold.
        if same.any():
            idx = np.flatnonzero(same)
            self.assertEqual(idx[-1] - idx[0] + 1, len(idx))

    @parameterized.parameters(0, 1, 2, 3)
    def test_linear_direction(self, label):
        # The object's centroid (pixels changed w.r.t. the median background) moves the named way.
        s = synthetic.classification(7, label=label, redundancy=0.0)
        f = s["frames"].astype(int)
        bg = np.median(f, axis=0)
        cents = []
        for t in (0, len(f) - 1):
            ys, xs = np.nonzero(np.any(np.abs(f[t] - bg) > 40, axis=-1))
            cents.append((xs.mean(), ys.mean()))
        dx, dy = np.subtract(cents[1], cents[0])
        expected = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}[label]
        self.assertGreater(dx * expected[0] + dy * expected[1], 20)

    @parameterized.parameters(range(8))
    def test_motion_path_properties(self, label):
        rng = np.random.default_rng(label)
        xy = synthetic.motion_path(rng, label, 40, (9, 5), 64, 64)
        self.assertEqual(xy.shape, (41, 2))
        self.assertTrue(np.all(np.any(np.diff(xy, axis=0) != 0, axis=1)))
        self.assertTrue(np.all(xy >= 0) and np.all(xy[:, 0] <= 64 - 5) and np.all(xy[:, 1] <= 64 - 9))
        d = np.diff(xy, axis=0)
        if label in (4, 5):  # oscillation: the moving coordinate reverses
            axis = 0 if label == 4 else 1
            self.assertTrue(np.all(d[:, 1 - axis] == 0))
            self.assertTrue(np.any(d[:, axis] > 0) and np.any(d[:, axis] < 0))
        if label in (6, 7):  # circle: constant distance to a fitted centre, turning the named way
            x, y = xy.T.astype(float)
            (a, b, _), *_ = np.linalg.lstsq(np.stack([x, y, np.ones_like(x)], 1), x**2 + y**2, rcond=None)
            c = np.array([a / 2, b / 2])
            r = np.linalg.norm(xy - c, axis=1)
            self.assertLess(r.std(), 1.0)
            v = xy - c
            cross = v[:-1, 0] * v[1:, 1] - v[:-1, 1] * v[1:, 0]
            self.assertTrue(np.all(np.sign(cross) == (1 if label == 6 else -1)))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "redundancy"):
            synthetic.classification(0, redundancy=1.5)
        with self.assertRaisesRegex(ValueError, "label"):
            synthetic.classification(0, label=8)
        with self.assertRaisesRegex(ValueError, "height"):
            synthetic.classification(0, height=8)
        with self.assertRaisesRegex(ValueError, "num_steps"):
            synthetic.classification(0, num_frames=200, redundancy=0.0, label=0)


class TemporalDetectionTest(parameterized.TestCase):
    @parameterized.parameters(range(6))
    def test_targets_and_motion(self, seed):
        s = synthetic.temporal_detection(seed, distractor=False)
        frames, fl, seg = s["frames"], s["frame_labels"], s["segments"]
        T = frames.shape[0]
        self.assertEqual(frames.shape, (96, 64, 64, 3))
        self.assertEqual(fl.shape, (T, s["num_classes"]))
        self.assertEqual((fl.dtype, seg.dtype), (np.uint8, np.float32))
        self.assertTrue(1 <= len(seg) <= 3)
        expected = np.zeros_like(fl)
        moving = np.zeros(T - 1, bool)
        for c, start, end in seg.astype(int):
            self.assertTrue(0 <= start <= end < T)
            expected[start : end + 1, c] = 1
            moving[start:end] = True
            self.assertTrue(np.all(fl[start : end + 1, c] == 1))
        np.testing.assert_array_equal(fl, expected)  # exactly 1 inside segments, 0 outside
        np.testing.assert_array_equal(_changed(frames), moving)  # only segment objects move, only then
        self.assertEqual(len(set(seg[:, 0].tolist())), len(seg))

    def test_distractor_moves_outside_segments(self):
        for seed in range(4):
            with_d = synthetic.temporal_detection(seed)
            without = synthetic.temporal_detection(seed, distractor=False)
            np.testing.assert_array_equal(with_d["frame_labels"], without["frame_labels"])
            fl = with_d["frame_labels"]
            outside = ~np.any(fl[1:], axis=1) & ~np.any(fl[:-1], axis=1)
            if outside.sum() > 4:
                self.assertGreater(_changed(with_d["frames"])[outside].mean(), 0.5)

    def test_overlap_possible(self):
        overlaps = 0
        for seed in range(20):
            fl = synthetic.temporal_detection(seed)["frame_labels"]
            overlaps += int(np.any(fl.sum(1) >= 2))
        self.assertGreater(overlaps, 0)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "num_segments"):
            synthetic.temporal_detection(0, num_segments=0)
        with self.assertRaisesRegex(ValueError, "min_length"):
            synthetic.temporal_detection(0, min_length=1)


class ClipSetTest(parameterized.TestCase):
    @parameterized.parameters(range(6))
    def test_relevant_clips_move_others_static(self, seed):
        noise = 3
        s = synthetic.clip_set(seed, noise=noise)
        frames, rel = s["frames"].astype(int), s["relevant_clips"]
        self.assertEqual(s["frames"].shape, (64, 64, 64, 3))
        self.assertEqual(s["frames"].dtype, np.uint8)
        self.assertEqual((rel.shape, rel.dtype), ((8,), np.bool_))
        self.assertTrue(1 <= rel.sum() <= 3)
        self.assertIn(s["label"], range(synthetic.NUM_CLASSES))
        clips = frames.reshape(8, 8, 64, 64, 3)
        for n in range(8):
            diff = np.abs(np.diff(clips[n], axis=0)).max(axis=(1, 2, 3))  # [L - 1]
            if rel[n]:
                self.assertTrue(np.all(diff > 2 * noise + 40), (n, diff))
            else:
                self.assertTrue(np.all(diff <= 2 * noise), (n, diff))
        self.assertGreater(np.abs(np.diff(frames, axis=0)).max(), 0)  # the noise is there

    def test_no_noise_is_exactly_static(self):
        s = synthetic.clip_set(5, noise=0, num_clips=4, clip_length=6, num_relevant=1)
        ch = _changed(s["frames"]).tolist() + [False]
        ch = np.array(ch).reshape(4, 6)[:, :-1]
        np.testing.assert_array_equal(ch.all(1), s["relevant_clips"])
        np.testing.assert_array_equal(ch.any(1), s["relevant_clips"])


class TubesTest(parameterized.TestCase):
    @parameterized.parameters(range(8))
    def test_boxes_inside_frame(self, seed):
        s = synthetic.tubes(seed)
        T, H, W, _ = s["frames"].shape
        self.assertEqual((T, H, W), (32, 64, 64))
        self.assertTrue(1 <= len(s["tubes"]) <= 3)
        for label, boxes in s["tubes"]:
            self.assertIn(label, range(synthetic.NUM_CLASSES))
            self.assertEqual((boxes.ndim, boxes.shape[1], boxes.dtype), (2, 5, np.float32))
            self.assertTrue(T // 4 <= len(boxes) < T)
            f = boxes[:, 0]
            np.testing.assert_array_equal(np.diff(f), 1)  # consecutive 1-based frames
            self.assertTrue(f[0] >= 1 and f[-1] <= T)
            x1, y1, x2, y2 = boxes[:, 1:].T
            self.assertTrue(np.all((0 <= x1) & (x1 <= x2) & (x2 <= W - 1)))
            self.assertTrue(np.all((0 <= y1) & (y1 <= y2) & (y2 <= H - 1)))

    @parameterized.parameters(range(6))
    def test_box_is_tight_around_single_actor(self, seed):
        s = synthetic.tubes(seed, num_actors=1)
        frames = s["frames"].astype(int)
        (label, boxes), = s["tubes"]
        in_tube = np.zeros(len(frames), bool)
        in_tube[boxes[:, 0].astype(int) - 1] = True
        bg = frames[np.flatnonzero(~in_tube)[0]]
        for t in np.flatnonzero(~in_tube):  # actor absent outside its tube
            np.testing.assert_array_equal(frames[t], bg)
        for row in boxes:
            t = int(row[0]) - 1
            ys, xs = np.nonzero(np.any(frames[t] != bg, axis=-1))
            np.testing.assert_array_equal([xs.min(), ys.min(), xs.max(), ys.max()], row[1:])
        # The actor moves: box positions change every frame.
        self.assertTrue(np.all(np.any(np.diff(boxes[:, 1:3], axis=0) != 0, axis=1)))

    def test_act_ground_truth(self):
        videos = {f"v{i}": synthetic.tubes(i) for i in range(4)}
        gt = synthetic.act_ground_truth(videos, ["v0", "v1", "v2"], ["v3"])
        self.assertEqual(gt["labels"], list(synthetic.MOTION_CLASSES))
        self.assertEqual(gt["train_videos"], [["v0", "v1", "v2"]])
        self.assertEqual(gt["test_videos"], [["v3"]])
        for v, s in videos.items():
            self.assertEqual(gt["nframes"][v], 32)
            self.assertEqual(gt["resolution"][v], (64, 64))
            got = sorted((k, b.tolist()) for k, bs in gt["gttubes"][v].items() for b in bs)
            want = sorted((k, b.tolist()) for k, b in s["tubes"])
            self.assertEqual(got, want)
        with self.assertRaisesRegex(KeyError, "test_videos"):
            synthetic.act_ground_truth(videos, ["v0"], ["nope"])


if __name__ == "__main__":
    absltest.main()
