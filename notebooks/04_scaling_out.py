# ---
# jupyter:
#   accelerator: TPU
#   colab:
#     name: cfjax - scaling out
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
# # Scaling out: the same config on one chip, a TPU VM slice and several hosts
#
# What changes between a Colab TPU v5e-1, a v5e-8 (Kaggle, or one TPU VM) and a multi-host pod
# slice: nothing in the config but the mesh (found from the devices) and the global batch; on
# several hosts, one `jax.distributed` initialisation and a checkpoint directory every host sees.
# The cells run here on whatever devices exist and simulate a preemption and its resume; the
# multi-host commands are text (they need a pod slice).
#
# **Runtime and time.** Colab TPU (v5e-1): not measured. GPU: not measured. CPU (2 cores): the cells run the
# ATFR synthetic config for `STEPS = 40` steps (interrupted at 20, then resumed) in 285 s,
# generating the synthetic data (512 + 128 videos) included (executed with nbclient, nothing else running);
# `SMOKE = True` runs the whole notebook in 29 s (measured here with `python -m pytest tests/notebooks` on 2 CPU cores, nothing else running).

# %% tags=["parameters"]
SMOKE = False  # True: the tiny smoke config (what the tests run on CPU)
STEPS = 40  # training steps of the preemption demo (smoke: the smoke config's 3)
WORKDIR = "/tmp/cfjax_notebooks/scaling"
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

# %% [markdown]
# ## Devices, mesh and global batch
# `config.batch_size` is the **global** batch: all devices of all processes together. The
# trainer builds a `("data", "model")` mesh from `config.mesh` (`data=-1`: every device not on
# the model axis) and splits each batch over `data`; every process loads `batch_size /
# process_count` examples, and losses and BatchNorm statistics are over the global batch, so
# one chip and 256 chips compute the same update for the same global batch (tested: 8 devices
# == 1, 2 processes == 1). `fit_to_devices` is the device check: mesh over all devices, batch
# rounded up to a multiple of them, bfloat16 on TPU.

# %%
import jax

from cfjax.train import partitioning
from cfjax.train.runtime import fit_to_devices, quiet_library_logs
from configs import atfr_x3d

quiet_library_logs()  # TFDS's per-load warnings off, as the command lines do
config, line = fit_to_devices(atfr_x3d.get_config("variant=smoke" if SMOKE else "variant=synthetic"))
print(line)
mesh = partitioning.make_mesh(config.mesh)
print("mesh:", dict(mesh.shape), "processes:", jax.process_count())
print(f"global batch {config.batch_size} = {jax.process_count()} process(es) x "
      f"{config.batch_size // jax.process_count()} per process; {config.batch_size // mesh.shape['data']} per device")

# %% [markdown]
# Mesh shapes for other slices (devices -> `mesh.data x mesh.model`): a v5e-1 is `1 x 1`,
# a v5e-8 `8 x 1`, a v5e-32 slice (8 hosts of 4 chips) `32 x 1`. `--config.mesh.model=2`
# splits large kernels over a second axis (only worth it for models that do not fit one
# chip; the zoo's do). Scaling the global batch with the chips keeps steps short: the papers'
# learning rates are given for a batch and scaled linearly (`schedule.base_lr` is for
# `batch_size`); for example `--config.batch_size=256 --config.schedule.base_lr=0.4` for X3D
# (1.6 at 1024).

# %% [markdown]
# ## Preemption and resume
# Checkpoints (Orbax, asynchronous) hold the train state and the data iterator's position; on
# SIGTERM (a preempted TPU VM, a Kaggle session ending) the trainer saves the current step and
# stops (`python -m experiments.train` exits 75 so a scheduler requeues it). Running the same
# command, or `loop.train` with the same workdir, resumes exactly (tested: resume ==
# uninterrupted). Below, a hook sends SIGTERM to this process halfway through.

# %%
import signal
from pathlib import Path

from cfjax.train import loop

if not SMOKE:
    config.total_steps = STEPS
half = max(1, config.total_steps // 2)
workdir = Path(WORKDIR) / "atfr"


def preempt_at(step, metrics):
    if step == half:
        signal.raise_signal(signal.SIGTERM)  # what the TPU VM's maintenance event sends


first = loop.train(config, workdir, hooks=[preempt_at], progress=True)
print("interrupted:", first == {}, "- checkpoints:", sorted(p.name for p in (workdir / "checkpoints").iterdir()))

# %%
scores = loop.train(config, workdir, progress=True)  # resumes from the saved step
print("resumed and finished:", loop.format_metrics(scores))

# %% [markdown]
# ## Several hosts (a TPU VM pod slice)
# Every host runs the same command; `--distributed` calls `jax.distributed.initialize()`, which
# finds the coordinator, process count and index itself on Cloud TPU VMs (elsewhere give
# `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`). The workdir must be one
# directory all hosts see: cfjax's `workdir` is a file-system path (`gs://` URLs are not
# supported yet), so mount the bucket with Cloud Storage FUSE on every host first.
#
# ```bash
# gcloud compute tpus tpu-vm ssh my-slice --zone=us-west4-a --worker=all --command='
#   git clone https://github.com/OWNER/cfjax && cd cfjax && pip install -q . &&
#   mkdir -p ~/gcs && gcsfuse --implicit-dirs my-bucket ~/gcs &&
#   python -m experiments.train --config configs/atfr_x3d.py:size=s,data=kinetics400 \
#     --workdir ~/gcs/runs/atfr_x3d_s --distributed --config.dtype=bfloat16 \
#     --config.batch_size=256 --config.schedule.base_lr=0.4'
# ```
#
# After a preemption, run the same command again: every host restores the latest checkpoint in
# the shared workdir. The data (`$CFJAX_DATA_DIR`, prepared once with `experiments.prepare_data`)
# must be readable by every host as well (the same mount, or a copy per host). Not run here:
# this notebook was not executed on a pod slice; the multi-process path is tested on CPU (2
# processes == 1).

# %%
import shlex

command = ["python", "-m", "experiments.train", "--config", "configs/atfr_x3d.py:size=s,data=kinetics400",
           "--workdir", "~/gcs/runs/atfr_x3d_s", "--distributed", "--config.dtype=bfloat16"]
print("each host runs:", shlex.join(command))
