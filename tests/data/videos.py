"""Tiny test videos for the input-pipeline tests."""

import numpy as np


def video(num_frames, height=24, width=32, label=0, num_classes=3):
    """Frame t is filled with the value t (so a pixel tells which frame it came from)."""
    frames = np.broadcast_to(
        np.arange(num_frames, dtype=np.uint8)[:, None, None, None], (num_frames, height, width, 3)
    ).copy()
    frame_labels = (np.arange(num_frames)[:, None] + np.arange(num_classes)[None, :]) % 256
    return {"frames": frames, "label": np.int64(label), "frame_labels": frame_labels.astype(np.uint8)}
