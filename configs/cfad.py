r"""CFAD: coarse-to-fine action detection (Li, Lin, See et al., ECCV 2020) on UCF101-24, JHMDB-21, UCF Sports.

    python -m experiments.train --config configs/cfad.py:data=ucf101_24[,variant=synthetic] --workdir DIR

Arguments: ``data`` ucf101_24 | jhmdb21 | ucfsports (default ``ucf101_24``), ``variant``
synthetic | smoke (default: the paper's full scale).

Per dataset (:data:`DATASET_SETTINGS`; docs/design.md): T frames, N 2D maps per proposal,
polynomial order k, and the paper's RGB video-mAP@0.5:

- ``ucf101_24``: T = 96, N = 16, k = 4; 62.7. ``cfjax_ucf101_24`` / ``split1`` (ACT's
  corrected annotations, 25 fps frames, 320 x 240).
- ``jhmdb21``: T = 32, N = 6, k = 2; 83.7, the mean over ACT's 3 splits. ``cfjax_jhmdb`` /
  ``split1`` (30 fps, 320 x 240, one tube per video, videos of 15-40 frames, each resampled
  to 32 frames: shorter ones repeat frames). Train one model per split
  (``--config.data.config=splitK``, workdirs ``DIR/split1..3``), then
  ``python -m experiments.evaluate --config configs/cfad.py:data=jhmdb21 --workdir DIR --all_splits``.
- ``ucfsports``: T = 32 ("32 otherwise"), N = 8, k = 2 (assumed: the paper's value for the
  other short-video dataset, JHMDB-21); no reference number. ``cfjax_ucfsports`` /
  ``split1`` (ACT's split: 103 training and 47 test videos of 10 classes, 10 fps, one tube
  per video).

Fixed by the paper (docs/design.md): 6 anchors per location from k-means of the training
boxes; at most 3 tubes per video after tube NMS at 0.2; refinement in Eq. 7's search window of
half-width sigma = 0.8 box sizes; the final tube through the refined key boxes and the coarse
boxes at the other steps (``interpolation="coarse"``); the TPN is trained first, then the
whole detector (``loss.tpn_steps``, then ``loss.cfad_stage = "end_to_end"``). Input and
evaluation: the whole video is resampled to T frames (``input.sampling = "resample"``: segment
centres in evaluation, a random frame of each segment in training) and the tubes are evaluated
against the whole video's ground truth with the ACT protocol (the ``tubes`` task);
``data.max_video_frames`` bounds the dataset's longest video (UCF101 clips last at most 71 s,
1776 frames at 25 fps; JHMDB clips 15-40 frames; UCF Sports up to 144 frames as far as known
here: a longer video stops the evaluation with a line naming the key).

Not the paper's backbone: CFAD uses Inception I3D's ``mixed_5b`` features pretrained on
Kinetics-600; the zoo has no I3D yet, so this config uses Hara et al.'s 3D ResNet-50 with its
res4 features, trained from scratch (none of the import sources of :mod:`cfjax.interop` offers
a Kinetics-pretrained 3D ResNet-50). Expect numbers well below the paper's until the I3D
backbone exists.

Assumed (not fixed by docs/design.md or the paper as far as known here): the key-step
threshold alpha = 0.25 (a choice: the paper's ablation spans 0.15..0.45 and names no final
value); ``anchor_sizes`` are ``None``: the first run reads the k-means anchors that
``experiments.prepare_data`` writes next to the dataset, scaled to the middle of the training
short-side range (:mod:`cfjax.train.anchors`; a missing file stops the run with the command
that writes it); training short side jittered in [240, 300], random 224 crops and flips; test:
short side 240, centre 224 crop (the sides of 320 x 240 frames are cut, for GT and detections
alike); SGD momentum 0.9, weight decay 5e-4 (Faster R-CNN's), batch 8 clips, lr 0.01 with 1
warm-up epoch, x0.1 at 2/3 and 8/9 of 30 epochs; the first 5 epochs train only the TPN.

``variant=synthetic``: a small CFAD (X3D-XS trunk of width 1.0, one block per stage, res3
features at stride 8, 64-channel heads, non-local keys pooled 2 x 2) on the synthetic tubes
(16 frames of 64 x 64, 1..3 actors of up to 28 px: UCF101-24-like sizes), the dataset's N and
k, k-means anchors (:data:`SYNTHETIC_TUBE_ANCHORS`), AdamW; 3000 steps of which the first 200
train only the TPN: about 2.1 s a step on 2 CPU cores with nothing else running (N = 16), some
110 minutes with its two evaluations (shorter runs score much lower, see README). ``variant=smoke``: 3 steps of a tiny
one, the same for every dataset.
"""

from cfjax.train.config import base_config, synthetic_data
from configs import common

# data: (T = clip_length, N = num_samples, k = poly_order, data.max_video_frames)
DATASET_SETTINGS = {"ucf101_24": (96, 16, 4, 1800), "jhmdb21": (32, 6, 2, 40), "ucfsports": (32, 8, 2, 160)}
ARGUMENTS = {"data": ("ucf101_24", tuple(DATASET_SETTINGS)), "variant": (None, common.VARIANTS)}
# Anchor sizes (w, h) of the synthetic tubes at 64 x 64:
#   kmeans_anchor_sizes(wh, k=6) over the (x2 - x1 + 1, y2 - y1 + 1) of every box of the 256
#   training videos of SYNTHETIC_SIZES["tubes"] (cfjax.data.synthetic.tubes, seeds (0, 0, i)),
#   rounded to 2 decimals; the smoke variant (32 x 32 crops) halves them.
SYNTHETIC_TUBE_ANCHORS = ((12.0, 25.0), (13.0, 26.54), (14.0, 28.0), (25.0, 25.0), (26.48, 26.48), (28.0, 28.0))


def get_config(arg=None):
    a = common.parse_arg(arg, ARGUMENTS)
    clip_length, num_samples, poly_order, max_video_frames = DATASET_SETTINGS[a.data]
    c = base_config()
    c.task = "tubes"
    classes = common.set_dataset(c, a.data)
    c.model = {
        "name": "cfad",
        "num_classes": classes,
        "backbone": {"name": "resnet50"},
        "feature_stage": "res4",
        "num_samples": num_samples,
        "poly_order": poly_order,
        "max_proposals": 8,
        "max_tubes": 3,
        "tube_nms_iou": 0.2,
        "anchor_sizes": None,  # the dataset's k-means anchors, read at the first run (cfjax.train.anchors)
        "alpha": 0.25,  # a choice: the paper's ablation spans 0.15..0.45
        "sigma": 0.8,
        "interpolation": "coarse",
    }
    c.data.max_tubes = 3
    c.data.max_video_frames = max_video_frames
    c.input.sampling, c.input.clip_length, c.input.stride = "resample", clip_length, 1
    c.input.crop_size, c.input.scale_range = 224, (240, 300)
    c.eval_input = {"sampling": "resample", "num_clips": 1, "num_crops": 1, "short_side": 240}
    c.batch_size, c.eval_batch_size = 8, 8
    c.num_epochs = 30
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.9, 5e-4
    c.schedule.name, c.schedule.base_lr = "multistep", 0.01
    c.schedule.boundaries, c.schedule.decay_factor = (2 / 3, 8 / 9), 0.1
    c.schedule.warmup_steps = max(1, common.epochs_to_steps(a.data, 1, c.batch_size))
    c.loss.cfad_stage = "end_to_end"
    c.loss.tpn_steps = common.epochs_to_steps(a.data, 5, c.batch_size)
    c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 50, 2000, 500

    if a.variant is not None:
        c.model.update(
            num_classes=common.SYNTHETIC_CLASSES,
            backbone={
                "name": "x3d_xs",
                "width_factor": 1.0,
                "depth_factor": 1.0,
                "base_depths": (1, 1, 1, 1),
                "head_width": 8,
            },
            feature_stage="res3",
            max_proposals=4,  # the G = 3 GT extents in training + 1 TPN proposal
            temporal_scales=(0.25, 0.5, 0.75, 1.0),
            nonlocal_pool=2,  # keys and values max-pooled 2 x 2, as in Wang et al.
            anchor_sizes=SYNTHETIC_TUBE_ANCHORS,
        )
    if a.variant == "synthetic":
        c.model.update(tpn_width=64, width=64, hourglass_width=32, rpn_width=64, pre_nms_tubes=32)
        synthetic_tubes(c, a.variant, clip_length=16, crop=64)
        common.synthetic_schedule(c, steps=3000, batch=8)
        c.loss.tpn_steps = 200
    elif a.variant == "smoke":  # half the width and the anchors (32 x 32 crops); N = 4, k = 2
        c.model.update(num_samples=4, poly_order=2, tpn_width=8, width=8, hourglass_width=8, rpn_width=8)
        c.model.update(pre_nms_tubes=8, anchor_sizes=tuple((w / 2, h / 2) for w, h in SYNTHETIC_TUBE_ANCHORS))
        c.model.backbone.width_factor = 0.5
        synthetic_tubes(c, a.variant, clip_length=8, crop=32)
        common.smoke(c)
        c.loss.tpn_steps = 1  # both phases run
    return c


def synthetic_tubes(c, variant: str, *, clip_length: int, crop: int) -> None:
    """Data and inputs of tube detection on the synthetic videos (16 frames of 64 x 64, 1..3
    actors whose class is their motion): the whole video resampled to ``clip_length`` frames
    (16: every frame), training :func:`common.synthetic_crop` (no flip: see
    :func:`common.synthetic_classification`); evaluation at short side ``crop``, centre crop,
    against the whole video's ground truth."""
    synthetic_data(c, "tubes", variant == "smoke", **common.SYNTHETIC_SIZES["tubes"])
    c.input.sampling, c.input.clip_length, c.input.stride = "resample", clip_length, 1
    common.synthetic_crop(c, crop)
    c.eval_input = {"sampling": "resample", "num_clips": 1, "num_crops": 1, "short_side": crop}
    c.data.max_video_frames = common.SYNTHETIC_SIZES["tubes"]["num_frames"]
