"""Input checks shared by the metrics: each raises ValueError naming the argument."""

from __future__ import annotations

import numpy as np


def positive_int(name: str, value) -> int:
    """``value`` as a Python int >= 1 (bools are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def real_array(name: str, value, shape_text: str, ndim: int, *, allow_inf: bool = False) -> np.ndarray:
    """Real-valued (int or float, not bool) array with ``ndim`` dims, as float64: no NaN, and
    no inf unless ``allow_inf`` (scores may be -inf / inf: ranking them is still defined).
    The one finite-array check of the metrics and the plots."""
    try:
        arr = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name}: expected {shape_text} real array, got {type(value).__name__}") from e
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {shape_text}, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name}: expected real (int or float) values {shape_text}, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if allow_inf and np.isnan(arr).any():
        raise ValueError(f"{name}: expected no NaN values")
    if not allow_inf and not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite values (no NaN / inf)")
    return arr


def int_array(name: str, value, shape: tuple[int, ...], shape_text: str) -> np.ndarray:
    """Integer-dtype array of exactly ``shape``, as int64."""
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected {shape_text} = {shape}, got shape {arr.shape}")
    empty_float = arr.size == 0 and np.issubdtype(arr.dtype, np.floating)  # np.asarray([]) is float64
    if not (np.issubdtype(arr.dtype, np.integer) or empty_float):  # bool is not an np.integer
        raise ValueError(f"{name}: expected an integer dtype, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def bool_mask(name: str, value, n: int) -> np.ndarray:
    """``[N]`` bool mask; ``None`` means all rows valid."""
    if value is None:
        return np.ones(n, bool)
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected [N] = {(n,)}, got shape {arr.shape}")
    if arr.dtype != bool and arr.size:
        raise ValueError(f"{name}: expected dtype bool, got dtype {arr.dtype}")
    return arr.astype(bool)


def binary_array(name: str, value, shape: tuple[int, ...], shape_text: str) -> np.ndarray:
    """Bool or numeric array of exactly ``shape`` holding only 0/1, as bool."""
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected {shape_text} = {shape}, got shape {arr.shape}")
    if arr.dtype != bool:
        numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        if not numeric or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name}: expected bool or 0/1 values, got dtype {arr.dtype}")
    return arr.astype(bool)


def labels_in_range(name: str, labels: np.ndarray, mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Check valid rows of ``labels`` lie in ``[0, num_classes)``; masked-out rows become 0."""
    bad = mask & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise ValueError(
            f"{name}: expected values in [0, {num_classes}) on valid rows, got {labels[bad][0]} "
            f"at row {int(np.flatnonzero(bad)[0])}"
        )
    return np.where(mask, labels, 0)
