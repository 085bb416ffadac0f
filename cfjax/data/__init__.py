"""Input pipelines: numpy video transforms and grain loaders (see pipeline.py)."""
