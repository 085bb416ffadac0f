"""cfjax: video models that spend compute where the video needs it (JAX/Flax)."""

__version__ = "0.1.0"
