"""Experiment configs: ``configs/NAME.py`` defines ``get_config(arg=None)``; ``common`` holds shared recipes."""
