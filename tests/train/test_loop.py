"""The training loop: resume == uninterrupted, 8 devices == 1, 2 processes == 1, guards and errors."""

import math
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from cfjax.train import loop
from cfjax.train.checkpoints import load_weights
from cfjax.train.data import load_dataset
from cfjax.train.optim import plateau_init
from cfjax.train.writers import read_metrics
from experiments.convert import convert_to_directory
from tests.interop.reference import pytorchvideo_x3d, require
from tests.train import tiny_config

ROOT = Path(__file__).resolve().parents[2]


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    load_dataset(config(path))  # build the synthetic dataset once
    return path


def config(data_dir, **changes):
    c = tiny_config.get_config()
    c.data.data_dir = str(data_dir)
    for key, value in changes.items():
        target = c
        *parents, leaf = key.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return c


def final_params(cfg, workdir):
    exp = loop.Experiment(cfg, workdir)
    state, step = loop.restore_state(exp, "latest")
    return jax.device_get(state["params"]), step


def losses(workdir):
    lines = read_metrics(workdir, "train")
    steps = [line["step"] for line in lines]
    assert steps == sorted(set(steps)), f"metrics.jsonl: expected one line per step, got steps {steps}"
    return [line["loss"] for line in lines]


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    cfg = config(data_dir)
    scores = loop.train(cfg, workdir, progress=False)
    return cfg, workdir, scores


def test_train_writes_metrics_checkpoints_and_run_info(uninterrupted):
    cfg, workdir, scores = uninterrupted
    assert set(scores) >= {"top1", "top5", "num_examples"} and scores["num_examples"] == 4
    assert len(losses(workdir)) == 4 and all(math.isfinite(v) for v in losses(workdir))
    assert (workdir / "config.json").exists() and (workdir / "git_revision.txt").read_text().strip()
    assert list((workdir / "tensorboard").iterdir()), "no TensorBoard event file"
    assert final_params(cfg, workdir)[1] == 4
    assert read_metrics(workdir, "eval")[-1]["top1"] == scores["top1"]


def test_crash_and_resume_equals_uninterrupted(uninterrupted, tmp_path):
    cfg, reference, _ = uninterrupted

    def crash(step, metrics):
        if step == 3:
            raise Crash

    with pytest.raises(Crash):
        loop.train(cfg, tmp_path, hooks=[crash], progress=False)
    assert final_params(cfg, tmp_path)[1] == 2  # the periodic checkpoint before the crash
    with (tmp_path / "metrics.jsonl").open("a") as f:  # as a run killed after logging step 3 leaves it
        f.write('{"step": 3, "split": "train", "loss": -1.0}\n')
    loop.train(cfg, tmp_path, progress=False)
    chex.assert_trees_all_close(final_params(cfg, tmp_path)[0], final_params(cfg, reference)[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(losses(tmp_path), losses(reference), rtol=1e-6)


def test_sigterm_saves_then_resumes(uninterrupted, tmp_path, capsys):
    cfg, reference, _ = uninterrupted

    def preempt(step, metrics):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    assert loop.train(cfg, tmp_path, hooks=[preempt], progress=False) == {}
    assert "SIGTERM: saved step 3" in capsys.readouterr().out
    assert final_params(cfg, tmp_path)[1] == 3  # saved at the preemption, not only every 2 steps
    loop.train(cfg, tmp_path, progress=False)
    out = capsys.readouterr().out
    assert "resumed from step 3" in out and "step 4: eval top1=" in out
    chex.assert_trees_all_close(final_params(cfg, tmp_path)[0], final_params(cfg, reference)[0], rtol=1e-6, atol=1e-7)


def test_eight_devices_match_one(uninterrupted, data_dir, tmp_path):
    assert jax.device_count() == 8
    cfg, eight, _ = uninterrupted  # mesh.data = -1: all 8 devices
    one = config(data_dir, **{"mesh.data": 1})
    loop.train(one, tmp_path, progress=False)
    # Before any update the losses agree to float32 rounding; after a few updates, reduction-order
    # differences (~1e-7) grow through BatchNorm on a tiny batch, so the tolerance widens.
    np.testing.assert_allclose(losses(eight)[:2], losses(tmp_path)[:2], rtol=1e-6)
    np.testing.assert_allclose(losses(eight), losses(tmp_path), rtol=2e-3)
    # Parameters after 4 steps: drift of up to ~5e-4 seen on 1e-2-sized weights.
    chex.assert_trees_all_close(final_params(cfg, eight)[0], final_params(one, tmp_path)[0], rtol=1e-2, atol=5e-3)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    # lr becomes inf after half the steps: the update at step 3 is not finite.
    cfg = config(data_dir, **{"schedule.name": "multistep", "schedule.boundaries": (0.5,),
                              "schedule.decay_factor": float("inf"), "checkpoint_every_steps": 1})
    with pytest.raises(FloatingPointError, match=r"not finite at step (\d).*last good checkpoint is step (\d)") as e:
        loop.train(cfg, tmp_path, progress=False)
    bad, good = (int(g) for g in re.search(r"step (\d).*step (\d)", str(e.value)).groups())
    params, step = final_params(cfg, tmp_path)
    assert bad == good + 1 == step + 1 and step >= 1
    assert all(np.isfinite(p).all() for p in jax.tree.leaves(params))


def test_init_from_a_converted_model_fine_tunes_with_other_classes(data_dir, tmp_path, capsys):
    """A pytorchvideo X3D of the tiny model's shape (400 classes) -> experiments.convert -> init_from -> 8 classes.

    Here, beside the other tiny runs, the train and eval steps compile once for the whole file."""
    torch = require("torch")
    torch.manual_seed(2)
    small = dict(width_factor=0.5, depth_factor=0.2)  # pytorchvideo's depths (1, 2, 5, 3) * 0.2 -> one block a stage
    model = pytorchvideo_x3d()(input_clip_length=4, input_crop_size=32, model_num_class=400, head_dim_out=16, **small)
    torch.save({"model_state": model.state_dict()}, tmp_path / "small.pyth")
    converted = convert_to_directory("pytorchvideo", "x3d_xs", tmp_path / "small.pyth", tmp_path / "converted",
                                     head_width=16, **small)
    workdir = tmp_path / "finetune"
    scores = loop.train(config(data_dir, init_from=str(converted)), workdir, progress=False)
    assert np.isfinite(scores["top1"])
    table = capsys.readouterr().out
    assert "re-initialised       2  classifier (num_classes 400 -> 8)" in table
    start, _ = load_weights(converted)
    trained, info = load_weights(workdir, "latest")  # a training workdir reads like a converted directory
    assert info["step"] == 4 and info["model"]["num_classes"] == 8
    assert trained["params"]["classifier"]["kernel"].shape == (16, 8)
    # training moved on from the converted weights (BatchNorm statistics and parameters)
    stats = lambda v: v["batch_stats"]["stem_t"]["norm"]["bn"]["mean"]  # noqa: E731
    assert not np.allclose(stats(trained), stats(start))
    assert not np.allclose(trained["params"]["stem_xy"]["kernel"], start["params"]["stem_xy"]["kernel"])


def test_bad_values_fail_before_anything_is_written(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"^total_steps: expected an integer >= 0 .*got -5$"):
        loop.train(config(data_dir, total_steps=-5), tmp_path / "w", progress=False)
    with pytest.raises(ValueError, match=r"^schedule.base_lr: expected > 0"):
        loop.train(config(data_dir, **{"schedule.base_lr": 0.0}), tmp_path / "w", progress=False)
    with pytest.raises(NotADirectoryError, match=r"^workdir: .*file.* is not a directory"):
        (tmp_path / "file").write_text("")
        loop.train(config(data_dir), tmp_path / "file" / "w", progress=False)
    assert not (tmp_path / "w").exists()


def test_short_run_fits_the_warmup_and_says_so(data_dir, tmp_path):
    exp = loop.Experiment(config(data_dir, **{"schedule.warmup_steps": 50}), tmp_path / "w")
    expected = "schedule.warmup_steps=50 is not shorter than the run (4 steps): warming up for 0 steps (10% of the run) instead"
    assert exp.notes == [expected]
    assert float(exp.schedule(0)) == pytest.approx(0.01)  # no warm-up left in a 4-step run
    assert not (tmp_path / "w").exists()


def test_plateau_and_freeze_in_the_trainer_state(data_dir, tmp_path):
    """Schedule "plateau" and ``optimizer.freeze`` in the state layout (shapes only: no step compiles)."""
    cfg = config(data_dir, **{"schedule.name": "plateau", "schedule.plateau_patience": 2, "eval_every_steps": 1,
                              "optimizer.freeze": (r"^(?!classifier/)",)})
    exp = loop.Experiment(cfg, tmp_path / "w")
    abstract = exp.abstract_state
    buffers = sorted(x.shape for x in jax.tree.leaves(abstract["opt_state"]) if x.shape)
    assert buffers == sorted(x.shape for x in jax.tree.leaves(abstract["params"]["classifier"]))  # frozen: no state
    shardings = exp.state_shardings["plateau"]
    state = {"plateau": {k: jax.device_put(np.asarray(v), shardings[k]) for k, v in plateau_init().items()}}
    notes = []
    for step, loss in enumerate([2.0, 2.0, 2.0, 2.5], start=1):
        state, note = exp.after_eval(state, {"loss": loss, "top1": 0.5}, step)
        notes.append(note)
    assert notes == [None] * 3 + [
        "step 4: eval loss 2.5 has not improved on 2 for more than 2 evaluations: lr x0.1 -> 0.001"
    ]
    assert float(state["plateau"]["scale"]) == pytest.approx(0.1) and int(state["plateau"]["bad_evals"]) == 0
    assert all(state["plateau"][k].sharding == shardings[k] for k in shardings)  # the compiled step's input layout
    assert not (tmp_path / "w").exists()


def test_plateau_and_freeze_errors_before_anything_is_written(data_dir, tmp_path):
    w = tmp_path / "w"
    with pytest.raises(ValueError, match=r"^eval_every_steps: schedule.name='plateau' .* expected > 0"):
        loop.train(config(data_dir, **{"schedule.name": "plateau"}), w, progress=False)
    with pytest.raises(ValueError, match=r"^init_from: optimizer.freeze=\('classifier',\) .*--config.init_from=DIR"):
        loop.train(config(data_dir, **{"optimizer.freeze": ("classifier",)}), w, progress=False)
    with pytest.raises(ValueError, match=r"^schedule.name: 'plateau' needs an evaluation loss; task 'frame_detection'"):
        loop.Experiment(config(data_dir, task="frame_detection", **{"schedule.name": "plateau", "eval_every_steps": 1}), w)
    with pytest.raises(ValueError, match=r"^optimizer.freeze: pattern\(s\) \['no_such_layer'\] match no parameter$"):
        loop.Experiment(config(data_dir, **{"optimizer.freeze": ("no_such_layer",)}), w)
    assert not w.exists()


def test_synthetic_data_generation_says_one_line(tmp_path, capfd):
    cfg = config(tmp_path)
    cfg.data.builder_kwargs.num_train, cfg.data.builder_kwargs.num_test = 2, 1
    load_dataset(cfg)
    out, err = capfd.readouterr()
    assert out.strip().splitlines() == [
        f"data: generating cfjax_synthetic/{load_dataset(cfg).builder.builder_config.name} in {tmp_path} "
        "(once; later runs reuse it)"
    ]
    assert "Downloading and preparing" not in out + err and "Generating" not in out + err


def test_missing_real_dataset_names_the_fix(tmp_path):
    cfg = config(tmp_path)
    cfg.data.dataset, cfg.data.config, cfg.data.builder_kwargs = "cfjax_ucf101", "split1", {}
    with pytest.raises(FileNotFoundError, match=r"cfjax_ucf101/split1 is not prepared.*experiments.prepare_data"):
        load_dataset(cfg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(uninterrupted, data_dir, tmp_path):
    """Two processes of one device each (the command line, as on a cluster) train what one process of
    8 devices trains (the module's uninterrupted run), up to the reduction-order drift of 8 vs 1 devices."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0")
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "experiments.train", "--config", "tests/train/tiny_config.py",
             f"--config.data.data_dir={data_dir}", "--noprogress", "--noplots", f"--workdir={tmp_path}",
             f"--coordinator_address=localhost:{port}", "--num_processes=2", f"--process_id={i}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    outputs = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]
        outputs.append(out)
    _, one, _ = uninterrupted
    np.testing.assert_allclose(losses(tmp_path)[:2], losses(one)[:2], rtol=1e-6)
    np.testing.assert_allclose(losses(tmp_path), losses(one), rtol=2e-3)
    assert read_metrics(tmp_path, "eval")[-1]["top1"] == read_metrics(one, "eval")[-1]["top1"]
    # What a user sees: one line per event and no library logs (absl "I1129 ..." lines, TFDS);
    # process 1 prints nothing of its own.
    lines = outputs[0].replace("\r", "\n").splitlines()
    assert not [line for line in lines if re.match(r"^[IW]\d{4} ", line) or "custom data configuration" in line]
    assert any(line.startswith("step 4: eval top1=") for line in lines)
    assert not any(line.startswith("step 4: eval") for line in outputs[1].splitlines())
