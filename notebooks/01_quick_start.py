# ---
# jupyter:
#   accelerator: TPU
#   colab:
#     name: cfjax quick start
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # cfjax quick start: ATFR (X3D + Similarity Guided Sampling) on the synthetic suite
#
# Installs cfjax from a clone (no TensorFlow), shows the devices, trains the ATFR synthetic
# config (`configs/atfr_x3d.py:variant=synthetic`: a small X3D with SGS after res2, 1000 steps)
# with the batch split over every local device (bfloat16 on TPU), then shows the training curves,
# the evaluation and the prediction plots (class scores over time, frames grouped into SGS bins),
# and trains the non-adaptive baseline (`adaptive=False`: the same X3D without SGS) for comparison.
#
# **Runtime and time.** Colab TPU (v5e-1): not measured. GPU: not measured. CPU (2 cores): the
# whole notebook (two runs of 1000 steps) takes 845 s (executed with nbclient, nothing else running)
# with the synthetic data already generated
# (generating it is part of `04_scaling_out`'s 285 s);
# `SMOKE = True` (3 steps of a tiny model) runs the whole notebook in 102 s, data generation
# included (measured here with `python -m pytest tests/notebooks` on 2 CPU cores, nothing else running).
# The library code it calls: `cfjax.train.runtime.fit_to_devices`, `cfjax.train.loop`,
# `cfjax.analysis.predict`, `cfjax.analysis.plots`.

# %% tags=["parameters"]
SMOKE = False  # True: a few steps of a tiny model (what the tests run on CPU)
WORKDIR = "/tmp/cfjax_notebooks/quick_start"  # checkpoints, metrics and plots (a rerun resumes here)
REPO = "https://github.com/OWNER/cfjax"  # the repository to clone on Colab

# %% [markdown]
# ## Install
# On Colab this clones the repository and installs cfjax with `pip install .` (JAX is
# preinstalled; TensorFlow is not needed). Elsewhere, run the notebook from a clone where
# `pip install -r requirements.txt` was done: nothing is installed.

# %%
import os
import subprocess
import sys

if "google.colab" in sys.modules and not os.path.isdir("configs"):
    if not os.path.isdir("/content/cfjax"):
        subprocess.run(["git", "clone", "--depth", "1", REPO, "/content/cfjax"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "/content/cfjax"], check=True)
    os.chdir("/content/cfjax")  # configs/ and experiments/ are read from the clone
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

# %% [markdown]
# ## Devices
# `fit_to_devices` uses every local device for data parallelism (mesh `data=N x model=1`), rounds
# the global batch up to a multiple of N and picks bfloat16 on TPU (float32 elsewhere).

# %%
from pathlib import Path

import jax
from IPython.display import Image, display

from cfjax.train.runtime import fit_to_devices, quiet_library_logs
from configs import atfr_x3d

quiet_library_logs()  # TFDS's per-load warnings off, as the command lines do
print(jax.devices())
config, line = fit_to_devices(atfr_x3d.get_config("variant=smoke" if SMOKE else "variant=synthetic"))
print(line)
print("model:", config.model.to_dict())

# %% [markdown]
# ## Train ATFR
# The first run generates the synthetic dataset (once per data directory, `$CFJAX_DATA_DIR`
# or `~/tensorflow_datasets`). The progress bar shows step, loss and learning rate; the run
# evaluates on the test split at the end and saves checkpoints (rerunning the cell resumes).

# %%
from cfjax.train import loop

atfr_dir = Path(WORKDIR) / "atfr"
loop.train(config, atfr_dir, progress=True)
atfr_scores, _ = loop.evaluate(config, atfr_dir, "best")
print("ATFR:", loop.format_metrics(atfr_scores))

# %% [markdown]
# ## Training curves

# %%
from cfjax.analysis.plots import plot_metrics
from cfjax.train.writers import read_metrics

CURVES = ["loss", "accuracy", "top1", "active_bins"]  # train accuracy, eval top-1, SGS's B' per clip
display(Image(str(plot_metrics(read_metrics(atfr_dir), atfr_dir / "curves.png", CURVES, "ATFR (X3D + SGS)"))))

# %% [markdown]
# ## Predictions
# For the first test videos: class scores over time (sliding windows) and the frames of the
# middle window grouped into their SGS bins (frames merged into one bin share a colour).

# %%
from cfjax.analysis import predict

for path in predict.plot_eval_examples(config, atfr_dir, 1 if SMOKE else 2):
    if path.suffix == ".png":
        display(Image(str(path)))

# %% [markdown]
# ## The non-adaptive baseline
# The same config with `adaptive=False`: X3D without SGS, trained the same way. On this suite
# expect the baseline to win (a full run here: ATFR top-1 16 %, baseline 54 % after 1000 steps).
# The synthetic classes are motion directions, and SGS orders its bins by similarity, not by time;
# README "What the synthetic runs show" explains.

# %%
baseline = config.copy_and_resolve_references()
baseline.adaptive = False
baseline_dir = Path(WORKDIR) / "baseline"
loop.train(baseline, baseline_dir, progress=True)
baseline_scores, _ = loop.evaluate(baseline, baseline_dir, "best")
print("ATFR:    ", loop.format_metrics(atfr_scores))
print("baseline:", loop.format_metrics(baseline_scores))
display(Image(str(plot_metrics(read_metrics(baseline_dir), baseline_dir / "curves.png", CURVES, "X3D baseline"))))
