"""``build(config.model)``: every zoo model by name from a ConfigDict or dict.

    model = build({"name": "x3d_s", "num_classes": 200, "sgs": {"stage": "res2"}})

The config holds ``name`` and any field of the model class (``num_classes``,
``sgs``, ``dtype`` as a string such as ``"bfloat16"``, ...). Other models add
themselves with :func:`register`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import flax.linen as nn
import jax.numpy as jnp

from cfjax.models.backbone import SGSConfig
from cfjax.models.cfad import CFAD
from cfjax.models.coarse_fine import CoarseFineNetwork
from cfjax.models.gcf_net import GCFNet
from cfjax.models.resnet3d import RESNET3D_PRESETS, ResNet3D
from cfjax.models.x3d import X3D, X3D_PRESETS

__all__ = ["build", "known_models", "non_adaptive", "reference_input", "register", "returns_features"]

_REGISTRY: dict[str, tuple[type[nn.Module], Callable[..., nn.Module]]] = {}
_REFERENCE_INPUTS: dict[str, tuple[int, int]] = {}
_FEATURES: set[str] = set()


def register(
    name: str,
    cls: type[nn.Module],
    factory: Callable[..., nn.Module] | None = None,
    reference_input: tuple[int, int] | None = None,
    *,
    features: bool = False,
) -> None:
    """Makes ``build({"name": name, **fields})`` call ``factory(**fields)`` (default ``cls``).

    ``reference_input``: the paper's ``(frames, crop)`` for this model, if any.
    ``features``: the model is a zoo backbone, called ``(x, train, mask, return_features)``;
    with ``return_features=True`` it returns ``(logits, features dict)``.
    """
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is already registered")
    _REGISTRY[name] = (cls, factory or cls)
    if reference_input is not None:
        _REFERENCE_INPUTS[name] = tuple(reference_input)
    if features:
        _FEATURES.add(name)


def known_models() -> list[str]:
    """The names ``build`` accepts, sorted."""
    return sorted(_REGISTRY)


def reference_input(name: str) -> tuple[int, int]:
    """The ``(frames, crop)`` of a model's paper setting (that its published FLOPs, if any, refer to)."""
    if name not in _REFERENCE_INPUTS:
        raise ValueError(f"model.name: no reference input for {name!r}; known: {sorted(_REFERENCE_INPUTS)}")
    return _REFERENCE_INPUTS[name]


def returns_features(name: str) -> bool:
    """Whether model ``name`` takes ``return_features`` (registered with ``features=True``)."""
    return name in _FEATURES


def build(config) -> nn.Module:
    """Builds the model named ``config["name"]`` with the other keys as its fields."""
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise TypeError(f"model config: expected a mapping with a 'name', got {type(config).__name__}")
    fields = dict(config)
    name = fields.pop("name", None)
    if name not in _REGISTRY:
        raise ValueError(f"model.name: unknown model {name!r}; known models: {', '.join(known_models())}")
    cls, factory = _REGISTRY[name]
    allowed = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"model: {name} has no field(s) {unknown}; its fields are {sorted(allowed)}")
    if "sgs" in fields:
        fields["sgs"] = SGSConfig.make(fields["sgs"])
    if isinstance(fields.get("dtype"), str):
        fields["dtype"] = jnp.dtype(fields["dtype"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return factory(**fields)


def non_adaptive(config) -> dict:
    """The model config of a method's non-adaptive baseline: the same network and sizes without
    the part that adapts its compute to the video.

    - a backbone with ``sgs`` (ATFR): the same backbone without SGS (uniform temporal resolution);
    - ``gcf_net``: ``head="mean_fusion"`` (the mean of the clip descriptors, no fusion or
      gates, trained on the same ``N`` clips). The paper's baselines (C-Clip, D-Clips) are
      single-clip classifiers with test-time averaging: the ``baseline=cclip`` / ``dclips``
      variants of ``configs/gcf.py``, not a model switch.

    Other models have no baseline here (Coarse-Fine's is a different network: X3D on the fine
    frames); they raise ``ValueError``.
    """
    fields = dict(config.to_dict() if hasattr(config, "to_dict") else config)
    name = fields.get("name")
    if fields.get("sgs") is not None:
        return {**fields, "sgs": None}
    if name == "gcf_net":
        return {**fields, "head": "mean_fusion"}
    raise ValueError(
        f"adaptive=False: model {name!r} has no non-adaptive baseline (known: backbones with an 'sgs' "
        "config, and gcf_net)"
    )


def _feature_extractor(backbone):
    """``None``, a module, or a model config (built with ``num_classes=0``) -> ``None`` or a module."""
    if backbone is not None and not isinstance(backbone, nn.Module):
        if hasattr(backbone, "to_dict"):
            backbone = backbone.to_dict()
        if not isinstance(backbone, Mapping):
            raise TypeError(f"backbone: expected None, a module or a model config, got {type(backbone).__name__}")
        backbone = build({"num_classes": 0, **backbone})
    return backbone


def _gcf_net(backbone=None, **fields) -> GCFNet:
    """``backbone``: ``None`` (head only), a module, or a model config (built with ``num_classes=0``)."""
    return GCFNet(backbone=_feature_extractor(backbone), **fields)


def _cfad(backbone=None, anchor_sizes=None, **fields) -> CFAD:
    """``backbone``: a module or a model config (built with ``num_classes=0``); ``anchor_sizes``: ``[[w, h], ...]``."""
    if anchor_sizes is not None:
        fields["anchor_sizes"] = tuple(tuple(float(v) for v in size) for size in anchor_sizes)
    return CFAD(backbone=_feature_extractor(backbone), **fields)


for _name, _p in X3D_PRESETS.items():
    register(f"x3d_{_name}", X3D, lambda _n=_name, **kw: X3D.preset(_n, **kw), (_p.frames, _p.crop), features=True)
for _name, _p in RESNET3D_PRESETS.items():
    register(
        _name, ResNet3D, lambda _n=_name, **kw: ResNet3D.preset(_n, **kw), (_p["frames"], _p["crop"]), features=True
    )
register("coarse_fine", CoarseFineNetwork)
register("gcf_net", GCFNet, _gcf_net)
# CFAD's defaults are its UCF101-24 setting: T = 96 frames (the paper), 224 crops (configs/cfad.py:data=ucf101_24).
register("cfad", CFAD, _cfad, (96, 224))
