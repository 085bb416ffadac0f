"""Speed benchmarks that print a table.

    python -m experiments.benchmark --what ops [--repeats 10] [--size small|paper]

``--what ops`` times the pure ops at Coarse-Fine / SGS shapes and shows that,
with length buckets, the work after SGS falls with the number of active bins.
Times are medians of ``--repeats`` runs after one warm-up (compilation excluded),
on whatever device jax picks. Compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from cfjax import ops

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", choices=["ops"], default="ops", help="which benchmark table to print")
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="input size preset")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per row (median reported)")
    args = parser.parse_args(argv)
    rows = bench_ops(args.size, args.repeats)
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}")
    widths = [max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)]
    print(f"{'op':<{widths[0]}}  {'shape':<{widths[1]}}  {'ms':>9}  note")
    for name, shape, seconds, note in rows:
        print(f"{name:<{widths[0]}}  {shape:<{widths[1]}}  {seconds * 1e3:9.2f}  {note}")


if __name__ == "__main__":
    main()
