# ---
# jupyter:
#   accelerator: TPU
#   colab:
#     name: cfjax - the four methods at a glance
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
# # The four methods at a glance
#
# One short synthetic training run per method, then what each method computes, drawn on a test
# video: **Coarse-Fine Networks** (per-frame scores and the Grid Pool's sampling positions over
# the frames), **GCF-Net** (the gate of each clip, and Grad-CAM on the clips it keeps),
# **CFAD** (coarse and refined action tubes on the frames). **SGS / ATFR** (frames grouped into
# bins) is in the quick start notebook. The runs are `STEPS` steps of each config's
# `variant=synthetic` (the full synthetic schedules are 600 to 3000 steps): they show the
# mechanics, not trained accuracy.
#
# **Runtime and time.** Colab TPU (v5e-1): not measured. GPU: not measured. CPU (2 cores), `STEPS = 300`:
# 1974 s, generating the three synthetic datasets included (executed with nbclient, nothing else running);
# `SMOKE = True` (3 steps of the tiny smoke configs) runs the whole notebook in 168 s,
# data generation included (measured here with `python -m pytest tests/notebooks` on 2 CPU cores, nothing else running).

# %% tags=["parameters"]
SMOKE = False  # True: the smoke configs (3 steps, tiny models), what the tests run on CPU
STEPS = 300  # training steps per method (ignored in smoke mode)
WORKDIR = "/tmp/cfjax_notebooks/methods"
REPO = "https://github.com/OWNER/cfjax"

# %%
import os
import subprocess
import sys

if "google.colab" in sys.modules and not os.path.isdir("configs"):
    if not os.path.isdir("/content/cfjax"):
        subprocess.run(["git", "clone", "--depth", "1", REPO, "/content/cfjax"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "/content/cfjax"], check=True)
    os.chdir("/content/cfjax")
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

# %%
from pathlib import Path

from IPython.display import Image, display

from cfjax.analysis import predict
from cfjax.train import loop
from cfjax.train.runtime import fit_to_devices, quiet_library_logs
from configs import cfad, coarse_fine, gcf

quiet_library_logs()  # TFDS's per-load warnings off, as the command lines do

def run(name, module, arg):
    """Trains ``module.get_config(arg + variant)`` for STEPS steps (smoke: its own 3), evaluates, plots one test video."""
    config, line = fit_to_devices(module.get_config(f"{arg}variant={'smoke' if SMOKE else 'synthetic'}"))
    if not SMOKE:
        config.total_steps = STEPS
    print(f"{name}: {line}")
    workdir = Path(WORKDIR) / name
    scores = loop.train(config, workdir, progress=True)  # the final evaluation on the test split
    print(f"{name}:", loop.format_metrics(scores))
    return [p for p in predict.plot_eval_examples(config, workdir, 1) if p.suffix == ".png"]


def show(paths, *kinds):
    for path in paths:
        if any(path.stem.endswith(kind) for kind in kinds):
            display(Image(str(path)))


# %% [markdown]
# ## Coarse-Fine Networks (Charades-style per-frame detection)
# The coarse stream samples K frames at learned positions (Grid Pool); the fine stream sees every
# frame. Below: per-frame class scores against the ground truth, and the sampling positions
# drawn over the clip's frames (with the labelled segments).

# %%
show(run("coarse_fine", coarse_fine, ""), "_scores", "_grid")

# %% [markdown]
# ## GCF-Net (many clips per video, gated)
# Each clip gets a gate in (0, 1); the video's prediction is the gated mean, and the clips
# with gate > 0.5 localise the action (Grad-CAM on them).

# %%
show(run("gcf", gcf, "backbone=r2plus1d,data=ucf101,"), "_gates", "_gradcam")

# %% [markdown]
# ## CFAD (action tubes)
# Coarse polynomial tubes (green) from the temporal proposal network, refined tubes (red) after
# the key-timestamp local search, ground truth dotted.

# %%
show(run("cfad", cfad, "data=ucf101_24,"), "_tubes")
