"""The trainer's configuration: every key, its default and its meaning, in one place.

A config file ``configs/NAME.py`` defines ``get_config(arg=None)`` that starts
from :func:`base_config` and sets what its experiment needs; ``arg`` picks the
experiment and its variant (``configs.common.parse_arg``).
"""

from __future__ import annotations

import ml_collections

__all__ = ["base_config", "synthetic_data", "validate"]


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every key the trainer reads (a config file overrides them)."""
    c = ml_collections.ConfigDict()
    c.task = "classification"  # classification | frame_detection | clip_set | tubes (see cfjax.train.tasks)
    c.seed = 0  # parameters, dropout and data order
    c.dtype = "float32"  # compute dtype given to the model ("bfloat16" for mixed precision)
    c.model = ml_collections.ConfigDict({"name": "x3d_s"})  # cfjax.models.build(config.model)
    # False trains the method's non-adaptive baseline (cfjax.models.non_adaptive): ATFR without
    # SGS, GCF-Net with the average head; other models refuse it.
    c.adaptive = True
    # Weights before step 0: a converted checkpoint (python -m experiments.convert) or a cfjax
    # workdir (its best checkpoint). Parameters and BatchNorm statistics load where path and
    # shape match; a classifier of another num_classes is re-initialised; a table lists what was
    # loaded, re-initialised, new and ignored. Ignored when the workdir already has checkpoints
    # (the run resumes).
    c.init_from = ""

    c.data = ml_collections.ConfigDict()
    c.data.dataset = "cfjax_synthetic"  # a cfjax.data.builders.BUILDERS name
    c.data.config = "classification"  # its builder config
    # Builder config overrides: synthetic sizes, or the prepare_data options of a real dataset
    # (--fps / --short_side / --set k=v), which are part of its directory name.
    c.data.builder_kwargs = ml_collections.ConfigDict()
    c.data.data_dir = ""  # "" -> $CFJAX_DATA_DIR or ~/tensorflow_datasets
    c.data.train_split = "train"
    c.data.eval_split = "test"
    c.data.worker_count = 0  # grain worker processes
    c.data.max_actors = 16  # padding of tube datasets (AdaptedSource)
    c.data.max_segments = 64  # padding of segment lists (AdaptedSource)
    c.data.max_tubes = 3  # tubes task: GT tubes per training clip (G of cfad_loss; < model.max_proposals)
    # tubes task evaluation: the whole-video ground truth is padded to this many frames (at least
    # the longest evaluated video; a longer one is an error naming this key)
    c.data.max_video_frames = 512

    # Training input (cfjax.data.transform.VideoTransform fields).
    c.input = ml_collections.ConfigDict()
    c.input.sampling = "clip"  # clip | clips | coarse_fine | resample (the whole video to clip_length frames)
    c.input.clip_length = 16
    c.input.stride = 1
    c.input.num_clips = 1
    c.input.fine_length = 128
    c.input.fine_stride = 1
    c.input.crop_size = 224
    c.input.scale_range = ml_collections.FieldReference(None, field_type=tuple)  # short-side jitter (min, max)
    c.input.short_side = ml_collections.FieldReference(None, field_type=int)
    c.input.flip = True
    # Evaluation input: the same fields, overriding ``input`` (e.g. 10 x 3 views).
    c.eval_input = ml_collections.ConfigDict()
    c.eval_input.sampling = "clip"  # clip | clips | coarse_fine | multi_view | resample
    c.eval_input.num_clips = 1
    c.eval_input.num_crops = 1

    c.batch_size = 64  # global batch (all devices and processes)
    c.eval_batch_size = 16
    c.total_steps = 0  # 0: num_epochs passes over the training split
    c.num_epochs = 1.0

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "sgd"  # sgd | adamw
    c.optimizer.momentum = 0.9
    # SGD: torch's dampening (buf = momentum * buf + (1 - dampening) * g; the first step buf = g)
    c.optimizer.dampening = 0.0
    c.optimizer.nesterov = False
    c.optimizer.weight_decay = 1e-4  # never applied to biases or normalisation parameters
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.eps = 1e-8
    c.optimizer.grad_clip_norm = 0.0  # 0: off
    # (regex on the parameter path "a/b/kernel", multiplier); first match wins.
    c.optimizer.lr_multipliers = ()
    # Regexes on the parameter path: matching parameters are frozen (no gradient, no optimizer state,
    # no weight decay). Their BatchNorm statistics still update in training (as torch's
    # requires_grad=False under model.train()). A new run with frozen parameters needs init_from.
    c.optimizer.freeze = ()

    c.schedule = ml_collections.ConfigDict()
    c.schedule.name = "cosine"  # cosine | multistep | constant | plateau
    c.schedule.base_lr = 0.1  # for the global batch_size
    c.schedule.warmup_steps = 0
    c.schedule.end_lr_factor = 0.0  # cosine ends at base_lr * end_lr_factor
    c.schedule.boundaries = (0.5, 0.75)  # multistep: fractions of total_steps
    c.schedule.decay_factor = 0.1  # multistep: lr *= decay_factor at each boundary; plateau: at each plateau
    # plateau: base_lr (after the warm-up) times a scale kept in the train state; after each
    # evaluation (eval_every_steps) the eval "loss" improves when below best * (1 - plateau_threshold);
    # after plateau_patience evaluations without improvement, the next one multiplies the scale by
    # decay_factor, then plateau_cooldown evaluations are not counted (torch's ReduceLROnPlateau).
    c.schedule.plateau_patience = 10
    c.schedule.plateau_threshold = 1e-4
    c.schedule.plateau_cooldown = 0

    c.loss = ml_collections.ConfigDict()
    c.loss.label_smoothing = 0.0
    c.loss.sparsity_weight = 0.0  # GCF-Net gate L1 weight
    # CFAD (tubes task): "tpn" trains the temporal proposal network only; "end_to_end" trains
    # everything, after a first phase of ``tpn_steps`` steps in which only the TPN terms count
    # (the paper trains the TPN first). The phase switch is a traced 0/1 weight on the non-TPN
    # terms inside the one jitted train step (cfjax.train.tasks.TubeDetectionTask.loss).
    c.loss.cfad_stage = "end_to_end"
    c.loss.tpn_steps = 0
    c.loss.cfad = ml_collections.ConfigDict()  # overrides of cfjax.train.losses.CFADLossConfig fields (not stage)

    c.log_every_steps = 10
    c.eval_every_steps = 0  # 0: evaluate only at the end
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 3  # the latest K are kept, and the best one
    c.max_eval_batches = 0  # 0: the whole eval split
    c.num_plots = 2  # predictions plotted after training (experiments.train)
    c.eval_protocol = ml_collections.ConfigDict()
    # Charades frame mAP (frame_detection): a class without positives scores AP 0 and counts ("zero", official) | "skip"
    c.eval_protocol.empty_classes = "zero"

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1: all devices not used by the model axis
    c.mesh.model = 1  # >1 shards large parameters over a "model" axis
    return c


# Keys checked by validate(): (dotted key, lowest allowed value, what it means).
_INTEGER_KEYS = (
    ("batch_size", 1, "the global batch"),
    ("eval_batch_size", 1, "the global evaluation batch"),
    ("total_steps", 0, "0: num_epochs passes over the training split"),
    ("log_every_steps", 1, "steps between metric lines"),
    ("eval_every_steps", 0, "0: evaluate only at the end"),
    ("checkpoint_every_steps", 1, "steps between checkpoints"),
    ("keep_checkpoints", 1, "checkpoints kept besides the best"),
    ("max_eval_batches", 0, "0: the whole evaluation split"),
    ("num_plots", 0, "predictions plotted after training"),
    ("schedule.warmup_steps", 0, "linear warm-up steps"),
    ("schedule.plateau_patience", 0, "evaluations without improvement before the lr is reduced"),
    ("schedule.plateau_cooldown", 0, "evaluations not counted after a reduction"),
    ("seed", 0, "random seed"),
)
DTYPES = ("float32", "bfloat16", "float16")


def _lookup(config, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` naming the first trainer key whose value cannot work.

    Checks what needs no data (the task, model, optimizer and schedule names are checked where they
    are built, also before any data is read); the trainer calls it before it writes anything.
    """
    for key, lowest, meaning in _INTEGER_KEYS:
        value = _lookup(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            expected = "a positive integer" if lowest == 1 else "an integer >= 0"
            raise ValueError(f"{key}: expected {expected} ({meaning}), got {value!r}")
    if not config.total_steps and not float(config.num_epochs) > 0:
        raise ValueError(f"num_epochs: expected > 0 when total_steps is 0, got {config.num_epochs!r}")
    if config.dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {config.dtype!r}")
    if not float(config.schedule.base_lr) > 0:
        raise ValueError(f"schedule.base_lr: expected > 0, got {config.schedule.base_lr!r}")
    dampening = config.optimizer.get("dampening", 0.0)
    if isinstance(dampening, bool) or not isinstance(dampening, (int, float)) or not 0 <= dampening < 1:
        raise ValueError(
            f"optimizer.dampening: expected a number with 0 <= dampening < 1 (torch's SGD), got {dampening!r}"
        )
    if dampening and (config.optimizer.name != "sgd" or config.optimizer.nesterov):
        raise ValueError(
            f"optimizer.dampening: expected 0 with {'Nesterov momentum' if config.optimizer.nesterov else 'AdamW'} "
            f"(only plain SGD momentum is dampened, as torch's SGD), got {dampening!r}"
        )
    if config.schedule.name == "plateau":
        if not config.eval_every_steps:
            raise ValueError(
                "eval_every_steps: schedule.name='plateau' reduces the lr on the evaluation loss; "
                "expected > 0 (steps between evaluations), got 0"
            )
        if not 0 < float(config.schedule.decay_factor) < 1:
            raise ValueError(
                f"schedule.decay_factor: expected 0 < factor < 1 for 'plateau', got {config.schedule.decay_factor!r}"
            )
        if not 0 <= float(config.schedule.plateau_threshold) < 1:
            raise ValueError(
                f"schedule.plateau_threshold: expected 0 <= threshold < 1, got {config.schedule.plateau_threshold!r}"
            )


def synthetic_data(config: ml_collections.ConfigDict, kind: str, smoke: bool, **sizes) -> None:
    """Points ``config.data`` at the synthetic suite of ``kind`` (small sizes for ``smoke``).

    Also turns horizontal flips off: the synthetic classes are motions, and a flip turns
    "move right" into "move left" (and clockwise into counter-clockwise) without changing the label.
    """
    config.data.dataset = "cfjax_synthetic"
    config.input.flip = False
    config.data.config = kind
    kwargs = dict(sizes)
    if smoke:
        kwargs.update(num_train=8, num_test=4)
    config.data.builder_kwargs = ml_collections.ConfigDict(kwargs)
