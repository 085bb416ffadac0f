"""Runs a trained config on one video file: predictions (JSON) and plots (PNG).

    python -m experiments.predict --config configs/NAME.py[:key=value,...] --workdir DIR --video FILE \
        [--out DIR/predict] [--checkpoint best|latest|STEP] [--fps F]
    python -m experiments.predict --checkpoint_dir CONVERTED_DIR --video FILE [--out DIR] [--fps F]

The second form runs a converted classifier (``experiments.convert``) without a training config:
windows over the whole video, top classes by name (Kinetics-400 for the converted models).

Plots: class scores over time; Coarse-Fine: Grid Pool positions over the frame strip;
SGS models: frames grouped into bins; GCF-Net: the gate of each clip and 3D Grad-CAM on the
clips whose gate exceeds 0.5 (``STEM_gradcam.png``; when none does, a printed line says so and
the plot shows the top-gated clip, labelled as such); CFAD (``tubes``): the coarse (green) and
refined (red) tubes on a strip of the clip's frames, and the detections (class, score, boxes
with the video's frame numbers) in the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from experiments import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/NAME.py[:key=value,...]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "the training directory")
_VIDEO = flags.DEFINE_string("video", None, "a video file (any format FFmpeg reads)")
_OUT = flags.DEFINE_string("out", None, "output directory (default: WORKDIR/predict)")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "best, latest or a step number")
_FPS = flags.DEFINE_float("fps", None, "decode at this frame rate (default: the file's)")
_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None, "a converted checkpoint (experiments.convert)")
flags.mark_flags_as_required(["video"])
flags.register_multi_flags_validator(
    ["config", "workdir", "checkpoint_dir"],
    lambda f: (
        bool(f["checkpoint_dir"]) != bool(f["config"] or f["workdir"])
        and (bool(f["checkpoint_dir"]) or bool(f["config"] and f["workdir"]))
    ),
    message="give either --checkpoint_dir, or both --config and --workdir",
)


def main(argv) -> int:
    del argv
    from cfjax.analysis import predict

    checkpoint = _CHECKPOINT.value
    checkpoint = int(checkpoint) if checkpoint.isdigit() else checkpoint
    if _CHECKPOINT_DIR.value:
        paths = predict.predict_pretrained(_CHECKPOINT_DIR.value, _VIDEO.value, _OUT.value, checkpoint, _FPS.value)
        result = json.loads(paths[0].read_text())
        windows = len(result["window_scores"])
        print(f"{Path(_VIDEO.value).name}: top {len(result['top'])} classes (softmax averaged over {windows} windows)")
        for t in result["top"]:
            print(f"{t['score']:.3f}  {t['class']}")
    else:
        paths = predict.predict_file(_CONFIG.value, _WORKDIR.value, _VIDEO.value, _OUT.value, checkpoint, _FPS.value)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    cli.run(main)
