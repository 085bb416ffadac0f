"""Reading PyTorch checkpoints safely into ``{key: np.ndarray}`` (numpy at the core).

A checkpoint file is untrusted input: it is read with PyTorch's weights-only
unpickler (``torch.load(..., weights_only=True)``), which builds tensors and
plain containers and refuses any other object, so a pickled payload never runs.
PyTorch is imported only here, only when a file is read; a state dict given as a
mapping of numpy arrays needs no PyTorch at all.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CheckpointError", "read_state_dict"]

# Containers that training scripts wrap a state dict in (PySlowFast / pytorchvideo .pyth use
# "model_state"; others "state_dict", "model_state_dict", "model").
WRAPPER_KEYS = ("model_state", "state_dict", "model_state_dict", "model", "net")
TORCH_EXTRA = "pip install -r requirements-torch.txt  (or: pip install 'cfjax[torch]')"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the requested model (one-line message)."""


def _torch():
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"reading a PyTorch checkpoint file needs PyTorch, which is not installed: {TORCH_EXTRA}. "
            "A state dict given as a mapping of numpy arrays needs no PyTorch."
        ) from None
    return torch


def _load_file(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(f"checkpoint: no file {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint: {path} is not a file")
    torch = _torch()
    import pickle

    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says enough
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = " ".join(str(e).split())
        found = re.search(r"GLOBAL (\S+) was not an allowed global", text)
        if found:
            raise CheckpointError(
                f"checkpoint {path}: refused: it needs the Python object {found.group(1)}, and cfjax reads "
                "checkpoints with PyTorch's weights-only unpickler, which builds only tensors and plain "
                "containers (nothing in the file was run). Re-save it as a state dict: "
                "torch.save(model.state_dict(), FILE)"
            ) from None
        found = re.search(r"WeightsUnpickler error: (.+?)(?: Check the documentation|$)", text)
        reason = found.group(1).strip() if found else text[:120]
        raise CheckpointError(
            f"checkpoint {path}: not a PyTorch checkpoint that weights-only loading can read ({reason})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, IndexError) as e:
        detail = str(e).strip().splitlines()[0].split(". ")[0][:120] if str(e).strip() else ""
        reason = f"{type(e).__name__}: {detail}" if detail else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path}: not a PyTorch checkpoint (torch.load failed with {reason}); expected a file "
            "written by torch.save, e.g. a .pt / .pth / .pyth state dict"
        ) from None


def _unwrap(obj: Any, where: str) -> Mapping:
    """The state dict inside the usual training-script wrappers."""
    while isinstance(obj, Mapping):
        inner = [k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)]
        if not inner or any(_is_array(v) for v in obj.values()):
            return obj
        obj = obj[inner[0]]
    raise CheckpointError(f"checkpoint {where}: expected a state dict (a mapping of tensors), got {type(obj).__name__}")


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("torch") and hasattr(value, "shape")


def _to_numpy(key: str, value, where: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return np.asarray(value)
    raise CheckpointError(f"checkpoint {where}: key {key!r} holds a {type(value).__name__}, expected a tensor")


def read_state_dict(checkpoint: str | os.PathLike | Mapping) -> dict[str, np.ndarray]:
    """``{key: array}`` from a ``.pt`` / ``.pth`` / ``.pyth`` file or a mapping of arrays.

    Unwraps ``{"model_state": ...}``-style containers and a ``module.`` prefix
    (``DataParallel``). Raises :class:`CheckpointError` for a missing file, a file
    that is not a PyTorch checkpoint, one that needs more than weights-only loading,
    or entries that are not tensors.
    """
    if isinstance(checkpoint, Mapping):
        where, obj = "(mapping)", checkpoint
    else:
        path = Path(os.fspath(checkpoint)).expanduser()
        where, obj = str(path), _load_file(path)
    state = _unwrap(obj, where)
    if not state:
        raise CheckpointError(f"checkpoint {where}: the state dict is empty")
    arrays = {str(k): _to_numpy(str(k), v, where) for k, v in state.items()}
    if all(k.startswith("module.") for k in arrays):
        arrays = {k[len("module.") :]: v for k, v in arrays.items()}
    return arrays
