"""CFAD's spatial anchors from a prepared dataset: six k-means sizes of its training boxes.

``python -m experiments.prepare_data`` writes :data:`ANCHORS_FILE` next to a prepared tube dataset
(:func:`write_anchor_file`): the k-means (:func:`cfjax.models.cfad_anchors.kmeans_anchor_sizes`) of the
``(w, h) = (x2 - x1 + 1, y2 - y1 + 1)`` of every training box divided by the short side of its
video's stored frames. A resize keeps the aspect, so every box scales with its frame's short side,
and the ``1 - IoU`` k-means commutes with a common scale: the anchors at short side ``S`` are ``S``
times the stored ones, the same as clustering the boxes resized to ``S``.

The trainer (:class:`cfjax.train.loop.Experiment`) calls :func:`resolve_anchor_sizes` before it
builds the model: a CFAD ``config.model`` without ``anchor_sizes`` gets the file's anchors at the
training scale, written into the config (so the run's ``config.json`` keeps them) with one printed
line. A missing file is an error naming the file and the command that writes it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

__all__ = ["ANCHORS_FILE", "box_sizes", "resolve_anchor_sizes", "training_short_side", "write_anchor_file"]

ANCHORS_FILE = "cfad_anchors.json"
NUM_ANCHORS = 6  # per location (the paper)


def _raw_decoder():
    import tensorflow_datasets as tfds

    class Raw(tfds.decode.Decoder):  # JPEG frames stay bytes: the sizes come from their headers
        def decode_example(self, x):
            return x

        decode_example_np = decode_batch_example_np = decode_example

    return Raw()


def box_sizes(builder, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(wh [M, 2], short [M])``: every box of ``split`` (inclusive pixels of the stored frames)
    and the short side of its video's frames. Needs a ``tube_boxes`` dataset."""
    import tensorflow_datasets as tfds
    from PIL import Image

    features = builder.info.features
    if "tube_boxes" not in features:
        raise ValueError(f"{builder.name}: not a tube dataset (no 'tube_boxes' feature), no CFAD anchors")
    jpeg = isinstance(features["frames"], tfds.features.Sequence)  # JPEG bytes per frame, else a uint8 tensor
    source = builder.as_data_source(split, decoders={"frames": _raw_decoder()} if jpeg else None)
    wh, short = [], []
    for i in range(len(source)):
        record = source[i]
        boxes = np.asarray(record["tube_boxes"], np.float64).reshape(-1, 5)
        if jpeg:
            width, height = Image.open(io.BytesIO(record["frames"][0])).size
        else:
            height, width = np.shape(record["frames"])[1:3]
        wh.append(np.stack([boxes[:, 3] - boxes[:, 1] + 1, boxes[:, 4] - boxes[:, 2] + 1], -1))
        short.append(np.full(len(boxes), min(height, width), np.float64))
    return np.concatenate(wh or [np.zeros((0, 2))]), np.concatenate(short or [np.zeros(0)])


def write_anchor_file(builder, k: int = NUM_ANCHORS) -> tuple[Path, dict]:
    """Writes :data:`ANCHORS_FILE` in ``builder.data_path``; returns ``(path, contents)``.

    ``contents["per_short_side"]``: ``[k, 2]`` ``(w, h)`` anchors for frames of short side 1
    (sorted by area); ``contents["pixels"]``: the k-means of the stored boxes' own pixel sizes.
    """
    from cfjax.models.cfad_anchors import kmeans_anchor_sizes

    wh, short = box_sizes(builder)
    valid = np.all(wh > 0, axis=1)
    wh, short = wh[valid], short[valid]
    if len(wh) < k:
        raise ValueError(f"{builder.name}: {len(wh)} training boxes, fewer than the {k} anchors to cluster")
    contents = {
        "dataset": f"{builder.name}/{builder.builder_config.name}",
        "split": "train",
        "num_boxes": len(wh),
        "per_short_side": np.round(kmeans_anchor_sizes(wh / short[:, None], k), 6).tolist(),
        "pixels": np.round(kmeans_anchor_sizes(wh, k), 3).tolist(),
        "about": "k-means (1 - IoU) of the training boxes' (x2 - x1 + 1, y2 - y1 + 1); per_short_side: divided "
        "by their frame's short side first (multiply by the training short side); pixels: as stored",
    }
    path = Path(builder.data_path) / ANCHORS_FILE
    path.write_text(json.dumps(contents, indent=1) + "\n")
    return path, contents


def training_short_side(config) -> tuple[float | None, str]:
    """The short side the training input is resized to, and where it comes from: the middle of
    ``input.scale_range``, else ``input.short_side``; ``(None, ...)`` when frames are not resized."""
    scale_range = config.input.get("scale_range")
    if scale_range is not None:
        middle = (float(scale_range[0]) + float(scale_range[1])) / 2
        return middle, f"short side {middle:g}, the middle of input.scale_range"
    if config.input.get("short_side") is not None:
        return float(config.input.short_side), f"short side {config.input.short_side} (input.short_side)"
    return None, "the stored frames' pixels (no training resize)"


def resolve_anchor_sizes(config) -> str | None:
    """Fills ``config.model.anchor_sizes`` of a CFAD config that has none; returns the line to print.

    Loads (or, for synthetic data, generates) the dataset of ``config.data``, reads its
    :data:`ANCHORS_FILE` and scales the anchors to :func:`training_short_side` (rounded to 0.01
    pixel). Other models, and CFAD configs with ``anchor_sizes``, are left alone (``None``).

    Raises:
      FileNotFoundError: the dataset has no anchors file (one line with the command that writes it).
    """
    model = config.model
    if model.get("name") != "cfad" or model.get("anchor_sizes") is not None:
        return None
    from cfjax.train.data import data_dir, load_dataset

    builder = load_dataset(config).builder
    path = Path(builder.data_path) / ANCHORS_FILE
    if not path.exists():
        options = " ".join(f"--set {k}={v}" for k, v in sorted(dict(config.data.builder_kwargs).items()))
        raise FileNotFoundError(
            f"model.anchor_sizes: not set and {path} does not exist; write it with: python -m experiments.prepare_data "
            f"--dataset {config.data.dataset}/{config.data.config} --data_dir {data_dir(config)}"
            f"{' ' + options if options else ''} (reads the prepared boxes), or set --config.model.anchor_sizes"
        )
    contents = json.loads(path.read_text())
    scale, where = training_short_side(config)
    sizes = np.asarray(contents["pixels"] if scale is None else contents["per_short_side"], np.float64)
    sizes = np.round(sizes * (1.0 if scale is None else scale), 2)
    anchors = tuple((float(w), float(h)) for w, h in sizes)
    with model.unlocked():
        model.anchor_sizes = anchors
    listed = ", ".join(f"{w:g}x{h:g}" for w, h in anchors)
    return (
        f"model.anchor_sizes: {len(anchors)} k-means anchors (w x h) of {contents['num_boxes']} training boxes "
        f"at {where}, from {path}: {listed}"
    )
