"""The task protocol: how a batch feeds a model, the loss, and the evaluation (``config.task``).

A task is the one place that knows the keys of a batch. The trainer builds it with
``from_config(config)`` (:func:`cfjax.train.tasks.get_task`) and calls, in order:

- ``transform(config, train)``: the per-example input transform;
- ``forward(model, variables, batch, train, rngs)`` -> ``(outputs, updates)`` (jitted);
- ``loss(outputs, batch, config, step)`` -> ``(loss, metrics)`` (jitted, training; ``step``
  is the traced train step, for losses that change over training such as CFAD's TPN-first phase);
- ``eval_outputs(outputs, batch)`` -> per-example device arrays ``[B, ...]`` (jitted);
- ``eval_metrics(results, class_names)`` -> ``(metrics, per_class)`` on the host, where
  ``results`` holds the concatenated ``eval_outputs`` of valid examples.

Also here: the input transform of ``config.input`` / ``config.eval_input`` that every task starts
from (:func:`video_transform`) and the helpers the task modules share.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from cfjax.data.sampling import SHORT_VIDEO
from cfjax.data.transform import VideoTransform

__all__ = ["Task", "short_video_mode", "video_transform"]

_TRANSFORM_FIELDS = {f.name for f in dataclasses.fields(VideoTransform)}


def _input_fields(config, train: bool) -> dict:
    fields = dict(config.input)
    if not train:
        fields.update(dict(config.eval_input))
    return fields


def short_video_mode(config, train: bool) -> str:
    """``input.short_video`` (or ``eval_input``'s): what the repeated clips of a short video are
    for ``sampling="clips"``: ``"loop"`` (real clips, the default) or ``"mask"`` (padding)."""
    fields = _input_fields(config, train)
    mode = fields.get("short_video", "loop")
    if mode not in SHORT_VIDEO:
        raise ValueError(f"input.short_video: expected one of {SHORT_VIDEO}, got {mode!r}")
    if "short_video" in fields and fields.get("sampling") != "clips":
        raise ValueError(
            f"input.short_video: only for sampling='clips' (GCF-Net's clip sets), got sampling={fields.get('sampling')!r}"
        )
    return mode


def video_transform(config, train: bool) -> VideoTransform:
    """``config.input`` (+ ``config.eval_input`` when evaluating) -> :class:`VideoTransform`."""
    short_video_mode(config, train)
    fields = _input_fields(config, train)
    unknown = sorted(set(fields) - _TRANSFORM_FIELDS)
    if unknown:
        where = "input / eval_input"
        raise ValueError(f"{where}: unknown VideoTransform field(s) {unknown}; known: {sorted(_TRANSFORM_FIELDS)}")
    if fields.get("scale_range") is not None:
        fields["scale_range"] = tuple(fields["scale_range"])
    if not train:
        fields.pop("scale_range", None)
    return VideoTransform(train=train, **fields)


def _mutable(variables, train: bool):
    return ["batch_stats"] if train and "batch_stats" in variables else False


def _apply(model, variables, args, kwargs, train, rngs):
    mutable = _mutable(variables, train)
    out = model.apply(variables, *args, train=train, rngs=rngs, mutable=mutable, **kwargs)
    return out if mutable else (out, {})


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class; see the module docstring for the protocol.

    A task's settings from the config are dataclass fields, filled by :meth:`from_config`.
    """

    name: ClassVar[str] = ""
    best_metric: ClassVar[str] = ""  # higher is better
    # whether eval_metrics reports the validation "loss" (schedule "plateau" needs it)
    eval_loss: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config) -> Task:
        """The task of a run's config (its fields read from it)."""
        del config
        return cls()

    def transform(self, config, train: bool):
        return video_transform(config, train)

    def inputs(self, model, batch) -> tuple[tuple, dict]:
        """``(args, kwargs)`` of the model call (``train`` is added by the caller)."""
        raise NotImplementedError

    def outputs(self, raw, batch) -> dict:
        """The model's return value -> a dict with at least ``logits``."""
        return dict(raw) if isinstance(raw, dict) else {"logits": raw}

    def init(self, model, rngs, batch):
        args, kwargs = self.inputs(model, batch)
        return model.init(rngs, *args, train=False, **kwargs)

    def forward(self, model, variables, batch, train: bool, rngs=None):
        """``(outputs, updated collections)``; BatchNorm statistics are updated when ``train``."""
        args, kwargs = self.inputs(model, batch)
        raw, updates = _apply(model, variables, args, kwargs, train, rngs)
        return self.outputs(raw, batch), updates

    def loss(self, outputs, batch, config, step=None):
        """``(loss, metrics)``; ``step`` is the traced train step (``None`` outside the trainer)."""
        raise NotImplementedError

    def eval_outputs(self, outputs, batch) -> dict:
        raise NotImplementedError

    def eval_metrics(self, results: dict, class_names) -> tuple[dict, dict]:
        raise NotImplementedError


def _require(batch, keys, task):
    missing = [k for k in keys if k not in batch]
    if missing:
        raise KeyError(f"batch: task {task!r} needs key(s) {missing}; the batch has {sorted(batch)}")


def _per_class_table(table: dict, class_names) -> dict:
    out = {"class": list(class_names)}
    for key, values in table.items():
        out[key] = [None if isinstance(v, float) and np.isnan(v) else v for v in np.asarray(values).tolist()]
    return out


def _eval_nll(logits, labels):
    """Per-example validation loss ``[B]``: ``-log p(label)``, with ``p`` the mean softmax over
    views when ``logits`` is ``[B, V, K]`` (the prediction that is scored); no label smoothing."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
    if logp.ndim == 3:
        logp = jax.nn.logsumexp(logp, axis=1) - jnp.log(logp.shape[1])
    return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
