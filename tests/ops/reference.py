"""Straight-line NumPy versions of docs/design.md's formulas, written as loops.

They share no code with cfjax.ops, so agreement to 1e-10 checks the semantics,
not a refactoring. float64 only.
"""

import numpy as np


def sampling_grid(scores, temperature=0.5):
    w = 1.0 - 1.0 / (1.0 + np.exp(-temperature * scores))
    w = w / (w.sum(-1, keepdims=True) + 1e-16)
    return np.concatenate([np.zeros_like(w[:, :1]), np.cumsum(w, -1)], -1)


def _lerp(frames, p):
    """frames [T, ...] at fractional index p (align corners, clamped)."""
    length = frames.shape[0]
    if length == 1:
        return frames[0]
    i = min(int(np.floor(p)), length - 2)
    f = p - i
    return (1 - f) * frames[i] + f * frames[i + 1]


def grid_pool(x, grid):
    length = x.shape[1]
    return np.stack([np.stack([_lerp(xb, gk * (length - 1)) for gk in gb]) for xb, gb in zip(x, grid)])


def grid_unpool(y, grid):
    num = grid.shape[1] - 1
    u = np.arange(num + 1) / num
    out = []
    for yb, gb in zip(y, grid):
        index = np.interp(u, gb, np.arange(num + 1))  # inverse of k -> g_k
        out.append(np.stack([_lerp(yb, p) for p in index]))
    return np.stack(out)


def upsample_linear(y, length):
    old = y.shape[1]
    pos = [j * (old - 1) / (length - 1) for j in range(length)] if length > 1 else [0.0]
    return np.stack([np.stack([_lerp(yb, p) for p in pos]) for yb in y])


def gaussian_alignment(grid, mask, offset, coarse_length, width=1 / 8):
    batch, fine = mask.shape
    out = np.zeros((batch, fine, grid.shape[1]))
    for b in range(batch):
        valid = np.flatnonzero(mask[b])
        sigma = width * len(valid)
        for k, gk in enumerate(grid[b]):
            mu = coarse_length * gk + offset[b]
            g = np.array([np.exp(-((t - mu) ** 2) / (2 * sigma**2 + 1e-16)) for t in valid])
            out[b, valid, k] = g / g.max()
    return out


def gaussian_alignment_all_steps(grid, mask, offset, coarse_length, width=1 / 8):
    """The official normalisation: max over all fine steps, padding included; nothing zeroed."""
    batch, fine = mask.shape
    out = np.zeros((batch, fine, grid.shape[1]))
    for b in range(batch):
        sigma = width * mask[b].sum()
        for k, gk in enumerate(grid[b]):
            mu = coarse_length * gk + offset[b]
            g = np.array([np.exp(-((t - mu) ** 2) / (2 * sigma**2 + 1e-16)) for t in range(fine)])
            out[b, :, k] = g / g.max()
    return out


def aligned_aggregate(fine, attention, weights, mask):
    batch, length = mask.shape
    out = []
    for b in range(batch):
        rows = []
        for k in range(weights.shape[2]):
            num, den = 0.0, 0.0
            for t in range(length):
                if mask[b, t]:
                    w = attention[b, t] * weights[b, t, k]
                    num = num + w * fine[b, t]
                    den = den + w
            rows.append(num / (den + 1e-6) * np.ones_like(fine[b, 0]))
        out.append(np.stack(rows))
    return np.stack(out)


def similarity_distance(z, measure="mean_distance"):
    if measure == "magnitude":
        return np.sqrt((z**2).sum(-1))
    mean = z.mean(1, keepdims=True)
    return np.sqrt(((mean - z + 1e-6) ** 2).sum(-1))


def similarity_guided_sampling(x, d, num_bins=None, kernel="linear"):
    batch, length = d.shape
    nbins = num_bins or length
    outs, masks = [], []
    for b in range(batch):
        # d / max is exactly 1 at the max, so the farthest frame sits exactly at 2B
        scaled = d[b] / d[b].max() * (2 * nbins)
        bins = []
        for j in range(nbins):
            centre = 2 * j + 1
            if kernel in ("kronecker", "kronecker_mean"):
                k = np.array([1.0 if abs(s - centre) <= 1 else 0.0 for s in scaled])
            else:
                k = np.array([max(0.0, 1 + 1e-7 - abs(s - centre)) for s in scaled])
            members = int((k > 0).sum())
            if members == 0:
                continue
            if kernel in ("kronecker_mean", "linear_normalized"):
                k = k / members
            bins.append(sum(kt * xt for kt, xt in zip(k, x[b])))
        out = np.zeros((nbins,) + x.shape[2:])
        out[: len(bins)] = np.stack(bins)
        outs.append(out)
        masks.append(np.arange(nbins) < len(bins))
    return np.stack(outs), np.stack(masks)
