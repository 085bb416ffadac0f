"""Deterministic procedural videos with known labels, for tests and smoke training.

Every generator takes a ``seed`` (an int or a sequence of ints, passed to
``np.random.default_rng``) and returns a plain dict of numpy arrays; the same
seed and arguments give bit-identical output. Videos are small by default.

Scenes: a static random background texture (values in [30, 100]) and bright
objects (a square, a disc or an upright rectangle; at least one channel >= 180)
drawn at integer pixel positions. The class of an action is its motion pattern
only; colour, shape, size, speed and position are nuisance factors.

Motion classes (``MOTION_CLASSES``; image coordinates, y points down):

=====  =========================  ==============================================
label  name                       motion of the object's top-left corner
=====  =========================  ==============================================
0      move_right                 linear, +x, constant speed >= 1 px/step
1      move_left                  linear, -x
2      move_down                  linear, +y
3      move_up                    linear, -y
4      oscillate_horizontal       triangle wave along x (back and forth)
5      oscillate_vertical         triangle wave along y
6      circle_clockwise           circle, angle increasing (clockwise on screen)
7      circle_counterclockwise    circle, angle decreasing
=====  =========================  ==============================================

Every motion step moves the object by at least one pixel, so a frame equals its
predecessor exactly when nothing moved (no noise unless asked for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "MOTION_CLASSES",
    "NUM_CLASSES",
    "act_ground_truth",
    "classification",
    "clip_set",
    "motion_path",
    "temporal_detection",
    "tubes",
]

MOTION_CLASSES = (
    "move_right",
    "move_left",
    "move_down",
    "move_up",
    "oscillate_horizontal",
    "oscillate_vertical",
    "circle_clockwise",
    "circle_counterclockwise",
)
NUM_CLASSES = len(MOTION_CLASSES)
_SHAPES = ("square", "disc", "rect")


# --------------------------------------------------------------------------- helpers


def _check_size(num_frames, height, width, min_frames=2):
    for name, v, lo in (("num_frames", num_frames, min_frames), ("height", height, 24), ("width", width, 24)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")


def _check_label(label):
    if label is not None and not (isinstance(label, (int, np.integer)) and 0 <= label < NUM_CLASSES):
        raise ValueError(f"label: expected an int in [0, {NUM_CLASSES}), got {label!r}")


def _background(rng, height, width) -> np.ndarray:
    """Static texture ``[H, W, 3]`` uint8 in [30, 100]: a smooth gradient plus blocky noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(40, 70, size=3)
    grad = rng.uniform(-15, 15, size=(2, 3))
    img = base + grad[0] * (yy / height)[..., None] + grad[1] * (xx / width)[..., None]
    blocks = rng.uniform(-10, 10, size=((height + 3) // 4, (width + 3) // 4, 3))
    img = img + np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)[:height, :width]
    return np.clip(np.round(img), 30, 100).astype(np.uint8)


def _appearance(rng, max_size, shape=None):
    """Random object: (mask bool [h, w], colour uint8 [3])."""
    shape = _SHAPES[rng.integers(len(_SHAPES))] if shape is None else shape
    s = int(rng.integers(max(4, max_size - 3), max_size + 1))
    if shape == "square":
        mask = np.ones((s, s), bool)
    elif shape == "disc":
        yy, xx = np.mgrid[0:s, 0:s] - (s - 1) / 2
        mask = yy**2 + xx**2 <= (s / 2) ** 2 + 0.25
    else:  # upright rectangle, person-like
        mask = np.ones((s, max(3, s // 2)), bool)
    colour = rng.integers(0, 120, size=3)
    colour[rng.integers(3)] = rng.integers(180, 256)
    return mask, colour.astype(np.uint8)


def _paste(frame, mask, colour, x, y):
    h, w = mask.shape
    region = frame[y : y + h, x : x + w]
    region[mask] = colour


def motion_path(rng, label: int, num_steps: int, box_hw, height: int, width: int) -> np.ndarray:
    """Integer top-left positions of an object doing motion class ``label``.

    Args:
      rng: ``np.random.Generator`` for the nuisance factors (speed, start, radius).
      label: motion class, see ``MOTION_CLASSES``.
      num_steps: number of motion steps ``M``.
      box_hw: ``(h, w)`` of the object; the whole object stays inside the frame.
      height, width: frame size.

    Returns:
      ``[M + 1, 2]`` int64 ``(x, y)``; consecutive rows differ (each step moves
      the object by at least one pixel).
    """
    _check_label(label)
    bh, bw = box_hw
    ax, ay = width - bw, height - bh  # free travel in x and y
    u = np.arange(num_steps + 1, dtype=np.float64)
    if label < 4:
        axis_len = ax if label in (0, 1) else ay
        if num_steps > axis_len:
            raise ValueError(
                f"num_steps={num_steps}: linear motion needs frame size - object size >= steps "
                f"(got {axis_len}); use a larger frame or fewer frames"
            )
        speed = rng.uniform(1.0, axis_len / num_steps) if num_steps else 1.0
        travel = np.floor(speed * u + 0.5)
        p0 = rng.integers(0, axis_len - int(travel[-1]) + 1)
        along = p0 + travel if label in (0, 2) else axis_len - p0 - travel
        other = np.full_like(u, rng.integers(0, (ay if label in (0, 1) else ax) + 1))
        xy = np.stack([along, other], 1) if label in (0, 1) else np.stack([other, along], 1)
    elif label < 6:
        axis_len = ax if label == 4 else ay
        half = int(rng.integers(3, max(4, min(8, num_steps // 2) + 1)))
        speed = int(rng.integers(1, max(2, min(4, axis_len // half + 1))))
        if speed * half > axis_len:
            raise ValueError(f"frame too small for oscillation: {half} steps of {speed} px > {axis_len}")
        phase = np.mod(u, 2 * half)
        tri = np.where(phase <= half, phase, 2 * half - phase)
        p0 = rng.integers(0, axis_len - speed * half + 1)
        along = p0 + speed * tri
        other = np.full_like(u, rng.integers(0, (ay if label == 4 else ax) + 1))
        xy = np.stack([along, other], 1) if label == 4 else np.stack([other, along], 1)
    else:
        r_max = min(ax, ay) // 2
        if r_max < 4:
            raise ValueError(f"frame too small for circular motion: free travel {min(ax, ay)} < 8 px")
        radius = rng.uniform(4, r_max)
        omega = rng.uniform(1.2, 1.8) * 2 * np.arcsin(1.0 / radius)  # chord >= 2.4 px per step
        sign = 1.0 if label == 6 else -1.0
        theta = rng.uniform(0, 2 * np.pi) + sign * omega * u
        cx = rng.uniform(radius, ax - radius)
        cy = rng.uniform(radius, ay - radius)
        xy = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], 1)
        xy = np.clip(np.floor(xy + 0.5), 0, [ax, ay])
    xy = xy.astype(np.int64)
    assert np.all(np.any(np.diff(xy, axis=0) != 0, axis=1)), "motion step of zero pixels"
    return xy


def _hold_positions(path, moving):
    """Positions per frame: ``path`` advances one step on each True of ``moving [T-1]``."""
    steps = np.concatenate([[0], np.cumsum(moving)])
    return path[steps]


# --------------------------------------------------------------------------- classification


def classification(
    seed,
    *,
    num_frames: int = 32,
    height: int = 64,
    width: int = 64,
    redundancy: float | None = None,
    label: int | None = None,
    object_size: int | None = None,
) -> dict:
    """One moving object whose motion pattern is the clip's class.

    ``redundancy`` r in [0, 1] is the fraction of the clip where the object is
    static: of the ``T - 1`` frame transitions, ``round(r * (T - 1))`` form one
    contiguous hold (random place) in which the frame repeats exactly. Default:
    drawn from U[0, 0.5].

    Returns:
      ``{"frames": uint8 [T, H, W, 3], "label": int, "redundancy": float}``
      (``redundancy`` is the realised fraction ``holds / (T - 1)``).
    """
    _check_size(num_frames, height, width)
    _check_label(label)
    rng = np.random.default_rng(seed)
    if redundancy is None:
        redundancy = float(rng.uniform(0.0, 0.5))
    if not 0.0 <= float(redundancy) <= 1.0:
        raise ValueError(f"redundancy: expected a fraction in [0, 1], got {redundancy!r}")
    label = int(rng.integers(NUM_CLASSES)) if label is None else int(label)
    transitions = num_frames - 1
    holds = int(round(float(redundancy) * transitions))
    moving = np.ones(transitions, bool)
    h0 = int(rng.integers(0, transitions - holds + 1))
    moving[h0 : h0 + holds] = False

    bg = _background(rng, height, width)
    mask, colour = _appearance(rng, object_size or max(6, min(height, width) // 6))
    path = motion_path(rng, label, int(moving.sum()), mask.shape, height, width)
    xy = _hold_positions(path, moving)
    frames = np.repeat(bg[None], num_frames, axis=0)
    for t in range(num_frames):
        _paste(frames[t], mask, colour, *xy[t])
    return {"frames": frames, "label": label, "redundancy": holds / transitions}


# --------------------------------------------------------------------------- temporal detection


def temporal_detection(
    seed,
    *,
    num_frames: int = 96,
    height: int = 64,
    width: int = 64,
    num_segments: int | None = None,
    min_length: int = 12,
    max_length: int | None = None,
    distractor: bool = True,
    object_size: int | None = None,
) -> dict:
    """Charades-like untrimmed video with 1..3 possibly overlapping action segments.

    Each segment has its own object (random look), present for the whole video
    and static except during its segment ``[start, end]`` (inclusive frames),
    where it performs its class's motion: it moves on every transition
    ``t - 1 -> t`` for ``start < t <= end``. Segment classes are distinct
    (``NUM_CLASSES`` = 8 classes, ``MOTION_CLASSES``). A distractor object
    (``distractor=True``) jitters randomly by up to 3 px around a home position
    on every frame, in and out of segments, and belongs to no class.

    Returns:
      ``{"frames": uint8 [T, H, W, 3], "frame_labels": uint8 [T, C],
      "segments": float32 [S, 3] (class, start_frame, end_frame),
      "num_classes": int}``; ``frame_labels[t, c] = 1`` iff some segment of
      class ``c`` has ``start <= t <= end``.
    """
    _check_size(num_frames, height, width, min_frames=min_length + 1)
    rng = np.random.default_rng(seed)
    size = object_size or max(6, min(height, width) // 7)
    cap = min(height, width) - size + 1  # longest segment a linear motion fits in
    max_length = min(max_length or num_frames // 2, cap, num_frames)
    if not 2 <= min_length <= max_length:
        raise ValueError(f"min_length={min_length}: expected 2 <= min_length <= max_length={max_length}")
    n = int(rng.integers(1, 4)) if num_segments is None else int(num_segments)
    if not 1 <= n <= NUM_CLASSES:
        raise ValueError(f"num_segments: expected an int in [1, {NUM_CLASSES}], got {num_segments!r}")

    bg = _background(rng, height, width)
    frames = np.repeat(bg[None], num_frames, axis=0)
    labels = rng.choice(NUM_CLASSES, size=n, replace=False)
    segments = np.zeros((n, 3), np.float32)
    frame_labels = np.zeros((num_frames, NUM_CLASSES), np.uint8)
    layers = []
    for i, c in enumerate(labels):
        length = int(rng.integers(min_length, max_length + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        end = start + length - 1
        mask, colour = _appearance(rng, size)
        moving = np.zeros(num_frames - 1, bool)
        moving[start:end] = True  # transition t-1 -> t is index t-1
        xy = _hold_positions(motion_path(rng, int(c), length - 1, mask.shape, height, width), moving)
        layers.append((mask, colour, xy))
        segments[i] = (c, start, end)
        frame_labels[start : end + 1, c] = 1
    if distractor:
        mask, colour = _appearance(rng, size)
        home = rng.integers(3, [width - mask.shape[1] - 2, height - mask.shape[0] - 2])
        jitter = rng.integers(-3, 4, size=(num_frames, 2))
        layers.insert(0, (mask, colour, home + jitter))
    for t in range(num_frames):
        for mask, colour, xy in layers:
            _paste(frames[t], mask, colour, *xy[t])
    return {
        "frames": frames,
        "frame_labels": frame_labels,
        "segments": segments[np.argsort(segments[:, 1], kind="stable")],
        "num_classes": NUM_CLASSES,
    }


# --------------------------------------------------------------------------- clip sets (GCF-Net)


def clip_set(
    seed,
    *,
    num_clips: int = 8,
    clip_length: int = 8,
    height: int = 64,
    width: int = 64,
    num_relevant: int | None = None,
    label: int | None = None,
    noise: int = 3,
    object_size: int | None = None,
) -> dict:
    """A long video of ``N`` clips of ``L`` frames; the action happens in 1..3 clips.

    In a relevant clip the object moves on every transition inside the clip
    (its class's motion, continued across relevant clips); in the others it is
    static. Every frame gets independent uniform integer noise in
    ``[-noise, noise]``, so within an irrelevant clip consecutive frames differ
    by at most ``2 * noise`` per pixel, while motion changes pixels by far more.

    Returns:
      ``{"frames": uint8 [N * L, H, W, 3], "label": int,
      "relevant_clips": bool [N]}`` (``relevant_clips`` is for evaluation only).
    """
    _check_size(num_clips * clip_length, height, width)
    _check_label(label)
    if clip_length < 2 or num_clips < 1:
        raise ValueError(f"clip_length, num_clips: expected >= 2 and >= 1, got {clip_length}, {num_clips}")
    if not 0 <= int(noise) <= 20:
        raise ValueError(f"noise: expected an int in [0, 20], got {noise!r}")
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, min(3, num_clips) + 1)) if num_relevant is None else int(num_relevant)
    if not 1 <= k <= num_clips:
        raise ValueError(f"num_relevant: expected an int in [1, num_clips={num_clips}], got {num_relevant!r}")
    label = int(rng.integers(NUM_CLASSES)) if label is None else int(label)
    relevant = np.zeros(num_clips, bool)
    relevant[rng.choice(num_clips, size=k, replace=False)] = True

    total = num_clips * clip_length
    moving = np.zeros(total - 1, bool)
    for c in np.flatnonzero(relevant):
        moving[c * clip_length : (c + 1) * clip_length - 1] = True  # transitions inside the clip
    bg = _background(rng, height, width)
    mask, colour = _appearance(rng, object_size or max(6, min(height, width) // 6))
    xy = _hold_positions(motion_path(rng, label, int(moving.sum()), mask.shape, height, width), moving)
    frames = np.repeat(bg[None], total, axis=0)
    for t in range(total):
        _paste(frames[t], mask, colour, *xy[t])
    if noise:
        jitter = rng.integers(-int(noise), int(noise) + 1, size=frames.shape, dtype=np.int16)
        frames = np.clip(frames.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
    return {"frames": frames, "label": label, "relevant_clips": relevant}


# --------------------------------------------------------------------------- tubes (UCF101-24-like)


def tubes(
    seed,
    *,
    num_frames: int = 32,
    height: int = 64,
    width: int = 64,
    num_actors: int | None = None,
    object_size: int | None = None,
) -> dict:
    """1..3 actors, each visible only during its tube and moving by its class.

    Actor ``i`` has a motion class, a temporal extent covering 1/4 to 3/4 of the
    video, and is drawn only inside it. Its box per frame is the tight box of
    its pixels, inclusive pixel coordinates (ACT +1 convention: area
    ``(x2 - x1 + 1) * (y2 - y1 + 1)``), always inside the frame.

    Returns:
      ``{"frames": uint8 [T, H, W, 3], "tubes": [(label, boxes float32 [n, 5])]}``
      with box rows ``(frame, x1, y1, x2, y2)``; ``frame`` is 1-based, as in
      ACT's ground truth (frame ``f`` is ``frames[f - 1]``).
    """
    _check_size(num_frames, height, width, min_frames=8)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4)) if num_actors is None else int(num_actors)
    if not 1 <= n <= 3:
        raise ValueError(f"num_actors: expected an int in [1, 3], got {num_actors!r}")
    size = object_size or max(6, min(height, width) // 6)
    bg = _background(rng, height, width)
    frames = np.repeat(bg[None], num_frames, axis=0)
    max_len = min(max(2, (3 * num_frames) // 4), min(height, width) - size + 1)
    min_len = min(max(2, num_frames // 4), max_len)
    out = []
    for _ in range(n):
        c = int(rng.integers(NUM_CLASSES))
        length = int(rng.integers(min_len, max_len + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        mask, colour = _appearance(rng, size, shape=("rect", "disc")[int(rng.integers(2))])
        xy = motion_path(rng, c, length - 1, mask.shape, height, width)
        ys, xs = np.nonzero(mask)
        boxes = np.zeros((length, 5), np.float32)
        for i in range(length):
            x, y = xy[i]
            _paste(frames[start + i], mask, colour, x, y)
            boxes[i] = (start + i + 1, x + xs.min(), y + ys.min(), x + xs.max(), y + ys.max())
        out.append((c, boxes))
    return {"frames": frames, "tubes": out}


def act_ground_truth(
    videos: Mapping[str, Mapping],
    train_videos: Sequence[str],
    test_videos: Sequence[str],
    labels: Sequence[str] = MOTION_CLASSES,
) -> dict:
    """Ground truth in the layout of ACT's UCF101-24 / JHMDB pickles.

    Args:
      videos: ``{video_name: tubes(...) output}`` (needs ``"frames"`` and ``"tubes"``).
      train_videos, test_videos: names from ``videos``.
      labels: class names, index = label.

    Returns:
      ``{"labels": list[str], "gttubes": {video: {label: [float32 [n, 5]]}},
      "nframes": {video: int}, "resolution": {video: (h, w)},
      "train_videos": [list[str]], "test_videos": [list[str]]}`` (one split,
      wrapped in a list as ACT does).
    """
    names = set(videos)
    for split, vs in (("train_videos", train_videos), ("test_videos", test_videos)):
        missing = [v for v in vs if v not in names]
        if missing:
            raise KeyError(f"{split}: videos not in `videos`: {missing[:5]}")
    gttubes, nframes, resolution = {}, {}, {}
    for name, sample in videos.items():
        frames = np.asarray(sample["frames"])
        if frames.ndim != 4:
            raise ValueError(f"videos[{name!r}]['frames']: expected [T, H, W, 3], got {frames.shape}")
        per_label: dict[int, list[np.ndarray]] = {}
        for label, boxes in sample["tubes"]:
            boxes = np.asarray(boxes, np.float32)
            if boxes.ndim != 2 or boxes.shape[1] != 5:
                raise ValueError(f"videos[{name!r}] tube of label {label}: expected boxes [n, 5], got {boxes.shape}")
            if not 0 <= int(label) < len(labels):
                raise ValueError(f"videos[{name!r}]: label {label} outside [0, {len(labels)})")
            per_label.setdefault(int(label), []).append(boxes)
        gttubes[name] = per_label
        nframes[name] = int(frames.shape[0])
        resolution[name] = (int(frames.shape[1]), int(frames.shape[2]))
    return {
        "labels": list(labels),
        "gttubes": gttubes,
        "nframes": nframes,
        "resolution": resolution,
        "train_videos": [list(train_videos)],
        "test_videos": [list(test_videos)],
    }
