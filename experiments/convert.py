"""Converts a PyTorch checkpoint into a cfjax checkpoint directory.

    python -m experiments.convert --source pytorchvideo --model x3d_s --checkpoint X3D_S.pyth --out DIR \
        [--num_classes N] [--class_names FILE]

``DIR`` is an ordinary cfjax checkpoint (Orbax, ``DIR/checkpoints/0``) with ``DIR/model.json``:
the model config, the class names (Kinetics-400 for 400-class pytorchvideo / torchvision
models, or ``--class_names``, one per line), the input format and the provenance (source file,
its sha256, the converter version). It loads without PyTorch: ``--config.init_from=DIR`` in
``experiments.train``, ``experiments.predict --checkpoint_dir DIR``, or
``cfjax.train.checkpoints.load_weights(DIR)``. Every error is one line, before anything is written.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from absl import flags

from experiments import cli

_SOURCE = flags.DEFINE_string("source", None, "pytorchvideo | torchvision | coarse_fine")
_MODEL = flags.DEFINE_string("model", None, "a cfjax registry name: x3d_xs, x3d_s, x3d_m, x3d_l, r2plus1d_18, ...")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "the PyTorch file (.pt, .pth, .pyth)")
_OUT = flags.DEFINE_string("out", None, "the new cfjax checkpoint directory")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", None, "default: the checkpoint's classifier width")
_CLASS_NAMES = flags.DEFINE_string("class_names", None, "a text file with one class name per line")
flags.mark_flags_as_required(["source", "model", "checkpoint", "out"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_to_directory(
    source: str, model: str, checkpoint, out, num_classes=None, class_names_file=None, **model_overrides
) -> Path:
    """Does what the command does; returns the directory. Raises one-line errors before writing.

    ``model_overrides``: model fields for checkpoints of non-standard sizes (e.g. a
    ``create_x3d(width_factor=0.5)``), as in :func:`cfjax.interop.convert`.
    """
    from cfjax.interop import CONVERTER_VERSION, SOURCES, convert
    from cfjax.train.checkpoints import MODEL_INFO, save_weights

    out = Path(out).expanduser().absolute()
    if (out / "checkpoints").exists() or (out / MODEL_INFO).exists():
        raise FileExistsError(f"--out: {out} already holds a checkpoint; choose a new directory")
    names = None
    if class_names_file:
        path = Path(class_names_file)
        if not path.is_file():
            raise FileNotFoundError(f"--class_names: no file {path}")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    overrides = dict(model_overrides) if num_classes is None else {**model_overrides, "num_classes": num_classes}
    converted = convert(checkpoint, source, model, **overrides)
    num = converted.model_config.get("num_classes")
    if names is not None and num is not None and len(names) != num:
        raise ValueError(f"--class_names: {class_names_file} has {len(names)} names, the model has {num} classes")
    info = {
        "model": converted.model_config,
        "class_names": names or converted.class_names,
        "input": SOURCES[source].input_format.get(model),
        "provenance": {
            "source": source,
            "checkpoint": str(Path(checkpoint).absolute()),
            "sha256": _sha256(Path(checkpoint)),
            "converter": CONVERTER_VERSION,
            "converted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "tensors_used": converted.report["used"],
        },
    }
    return save_weights(out, converted.variables, info)


def main(argv) -> int:
    del argv
    out = convert_to_directory(  # errors (CheckpointError is a ValueError) end as one line: experiments.cli
        _SOURCE.value, _MODEL.value, _CHECKPOINT.value, _OUT.value, _NUM_CLASSES.value, _CLASS_NAMES.value
    )
    print(f"wrote {out} ({_SOURCE.value} {_MODEL.value}); use --config.init_from={out} or "
          f"python -m experiments.predict --checkpoint_dir {out} --video FILE")
    return 0


if __name__ == "__main__":
    cli.run(main)
