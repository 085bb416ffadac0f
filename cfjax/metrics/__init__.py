"""Evaluation metrics (pure numpy / jnp; no models)."""

from cfjax.metrics.localisation import gate_intervals

__all__ = ["gate_intervals"]
