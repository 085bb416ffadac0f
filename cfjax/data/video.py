"""Video decoding with PyAV (FFmpeg) into uint8 numpy frames.

``decode_video`` streams a file once: it seeks to ``start_sec``, resamples to a
target frame rate by picking, for each output time, the decoded frame with the
nearest timestamp, and resizes the short side with PIL (bilinear). Frames are
converted to RGB only when they are picked, so decoding a long video at a low
rate holds one or two frames in memory, not the whole stream.

Time is measured from the first frame of the video stream (its start time), so
``start_sec=0`` is the first frame whatever the container's pts offset.
"""

from __future__ import annotations

import io
import math
import os
from fractions import Fraction

import av
import numpy as np
from PIL import Image

__all__ = ["VideoDecodeError", "decode_jpeg", "decode_video", "encode_jpeg", "resize_short_side"]


class VideoDecodeError(ValueError):
    """A video file is missing, unreadable, or has no frames in the asked range."""

    def __init__(self, path, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _check_positive(name, value, integer=False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return int(value) if integer else float(value)


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Resizes ``frame [H, W, 3] uint8`` so that ``min(H', W') == short_side``.

    Keeps the aspect ratio (long side rounded to the nearest pixel, at least 1)
    and uses PIL bilinear resampling. Returns ``[H', W', 3]`` uint8.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame: expected uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    return np.asarray(_resize_image(Image.fromarray(frame), short_side))


def _resize_image(image: Image.Image, short_side: int | None) -> Image.Image:
    if short_side is None:
        return image
    w, h = image.size
    scale = short_side / min(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    if (w, h) == size:
        return image
    return image.resize(size, Image.BILINEAR)


def _stream_rate(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return None


def decode_video(
    path,
    fps: float | None = None,
    short_side: int | None = None,
    start_sec: float | None = None,
    end_sec: float | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decodes ``path`` to RGB frames.

    Args:
      path: video file (anything FFmpeg reads).
      fps: output frame rate; ``None`` keeps the native frames. Output frame
        ``k`` is the decoded frame nearest in time to ``start + k / fps``
        (frames are repeated when ``fps`` exceeds the native rate).
      short_side: resize so that ``min(H, W) == short_side`` (aspect kept,
        bilinear); ``None`` keeps the decoded size.
      start_sec: first time to cover (seconds from the stream start); default 0.
      end_sec: end of the covered range, exclusive; default the end of the video.
      max_frames: stop after this many output frames.

    Returns:
      ``(frames, fps_out)``: ``frames`` uint8 ``[T, H, W, 3]``; ``fps_out`` the
      rate of the returned frames (``fps``, or the native average rate). With
      ``fps`` set, ``T`` is ``ceil((end - start) * fps)`` (``end`` clipped to
      the video's duration) unless ``max_frames`` is smaller.

    Raises:
      VideoDecodeError: missing or unreadable file, no video stream, a decoding
        error, or no frame in ``[start_sec, end_sec)``.
      ValueError: a bad argument (non-positive fps, start after end, ...).
    """
    fps = _check_positive("fps", fps)
    short_side = _check_positive("short_side", short_side, integer=True)
    max_frames = _check_positive("max_frames", max_frames, integer=True)
    start = 0.0 if start_sec is None else float(start_sec)
    if not math.isfinite(start) or start < 0:
        raise ValueError(f"start_sec: expected a time >= 0, got {start_sec!r}")
    end = math.inf if end_sec is None else float(end_sec)
    if not end > start:
        raise ValueError(f"end_sec: expected a time after start_sec={start}, got {end_sec!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "no such file")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoDecodeError(path, f"cannot open: {e}") from e
    try:
        with container:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream")
            frames, fps_out = _decode_stream(
                container, container.streams.video[0], fps, short_side, start, end, max_frames
            )
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoDecodeError(path, f"decoding failed: {e}") from e
    if not frames:
        raise VideoDecodeError(
            path, f"no frames decoded in [{start}, {end}) s (empty or corrupt video, or range past its end)"
        )
    return np.stack(frames), fps_out


def _decode_stream(container, stream, fps, short_side, start, end, max_frames):
    stream.thread_type = "AUTO"
    native = _stream_rate(stream)
    time_base = stream.time_base or Fraction(1, 1)
    t0 = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    if start > 0:
        # Seek to the keyframe at or before start; exact placement comes from timestamps.
        container.seek(int((start + t0) / time_base), stream=stream, backward=True, any_frame=False)
    half = 0.5 / native if native else 0.0

    out: list[np.ndarray] = []
    cache: list = [None, None]  # (frame, its RGB array); holds the frame so it is not reused

    def rgb(frame):
        if cache[0] is not frame:
            cache[:] = [frame, np.asarray(_resize_image(frame.to_image(), short_side), dtype=np.uint8)]
        return cache[1]

    def full():
        return max_frames is not None and len(out) >= max_frames

    prev, prev_t = None, None
    last_t = None
    k = 0  # next output index (resampling mode)
    for frame in container.decode(stream):
        if frame.pts is not None:
            t = float(frame.pts * time_base) - t0
        elif last_t is not None and native:
            t = last_t + 1.0 / native
        else:
            t = 0.0 if last_t is None else last_t
        last_t = t
        if fps is None:
            # Native frames whose display centre lies in [start, end).
            if t + half < start - 1e-9:
                continue
            if t + half >= end - 1e-9:
                break
            out.append(rgb(frame))
        else:
            # Emit every target time closer to an earlier frame than to this one.
            while not full():
                target = start + k / fps
                if target >= end - 1e-9 or target > t:
                    break
                use_prev = prev is not None and target - prev_t <= t - target
                out.append(rgb(prev) if use_prev else rgb(frame))
                k += 1
            if full() or start + k / fps >= end - 1e-9:
                break
            prev, prev_t = frame, t
        if full():
            break
    else:
        # End of stream: targets up to the last frame's end time use the last frame.
        if fps is not None and prev is not None:
            stream_end = prev_t + (1.0 / native if native else 1.0 / fps)
            while not full():
                target = start + k / fps
                if target >= min(end, stream_end) - 1e-9:
                    break
                out.append(rgb(prev))
                k += 1
    return out, float(fps) if fps is not None else float(native or 0.0)


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """JPEG-encodes ``frame`` uint8 ``[H, W, 3]`` at ``quality`` in [1, 95]."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame: expected uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    if not 1 <= int(quality) <= 95:
        raise ValueError(f"quality: expected an int in [1, 95], got {quality!r}")
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decodes JPEG (or any PIL-readable) bytes to uint8 ``[H, W, 3]`` RGB."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise ValueError(f"data: not a decodable image ({len(data)} bytes): {e}") from e
