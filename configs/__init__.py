"""Experiment configs: ``configs/METHOD.py`` defines ``get_config(arg)``, ``arg`` comma-separated ``key=value``
pairs (``ARGUMENTS``); ``common`` holds the dataset table, the argument parser and the synthetic / smoke pieces."""
