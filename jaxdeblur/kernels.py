"""Blur kernels: generators, geometric helpers and loaders.

Conventions: a kernel is a non-negative float32 array (kh, kw) summing to 1,
used by `jaxdeblur.forward.blur` as a TRUE convolution whose centre tap is
(kh // 2, kw // 2) (also for even sizes). Helpers marked "batched" accept
(..., kh, kw) and act on the last two axes.

Generators and helpers are pure jnp. Sizes (and `resize`'s scale) fix output
shapes, so they must be Python numbers; the other parameters (sigma, radius,
length, anxiety, exposure) may be traced, so the generators jit and vmap,
e.g. ``jax.vmap(lambda key: motion(key, 31))(jax.random.split(key, 1000))``.
Geometric resampling uses explicit interpolation matrices at HIGHEST matmul
precision, so results do not depend on the accelerator's default precision.
The loaders return NumPy float32.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import ndtri


# Boracchi & Foi simulate a trajectory with 2000 samples; their anxiety,
# centripetal and shake parameters are per-sample rates at that resolution.
_BORACCHI_SAMPLES = 2000
_DISK_SUPERSAMPLING = 16


def _size_pair(size, name: str = "size") -> tuple[int, int]:
    """int or (int, int) -> (kh, kw), each a positive Python int."""
    pair = (size, size) if np.ndim(size) == 0 else tuple(size)
    if len(pair) != 2 or any(int(s) != s or s < 1 for s in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_positive(value, name: str) -> None:
    """Raise ValueError for a concrete value <= 0 (traced values are not checked)."""
    if isinstance(value, jax.core.Tracer):
        return
    if not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_kernel(k, name: str = "k") -> jnp.ndarray:
    k = jnp.asarray(k)
    if k.ndim < 2:
        raise ValueError(f"{name} must have shape (..., kh, kw), got {k.shape}")
    if not jnp.issubdtype(k.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating point, got dtype {k.dtype}")
    return k.astype(jnp.float32)


def _centre_delta(shape: tuple[int, ...]) -> jnp.ndarray:
    kh, kw = shape[-2:]
    return jnp.zeros(shape, jnp.float32).at[..., kh // 2, kw // 2].set(1.0)


def gaussian(size, sigma) -> jnp.ndarray:
    """Sampled Gaussian kernel, peak at the centre tap (kh // 2, kw // 2), sum 1.

    k[i, j] is proportional to exp(-(i - kh//2)^2 / (2 sy^2) - (j - kw//2)^2 / (2 sx^2)),
    truncated to the support (for even sizes the truncation is asymmetric).

    Args:
      size: kh = kw (int) or (kh, kw).
      sigma: standard deviation in pixels, a scalar or (sy, sx); may be traced.

    Returns:
      (kh, kw) float32.
    """
    kh, kw = _size_pair(size)
    _check_positive(sigma, "sigma")
    return _gaussian(jnp.asarray(sigma, jnp.float32), kh=kh, kw=kw)


@functools.partial(jax.jit, static_argnames=("kh", "kw"))
def _gaussian(sigma: jnp.ndarray, *, kh: int, kw: int) -> jnp.ndarray:
    sy, sx = jnp.broadcast_to(sigma, (2,))
    y = jnp.arange(kh, dtype=jnp.float32) - kh // 2
    x = jnp.arange(kw, dtype=jnp.float32) - kw // 2
    g = jnp.exp(-0.5 * (y / sy) ** 2)[:, None] * jnp.exp(-0.5 * (x / sx) ** 2)[None, :]
    return g / jnp.sum(g)


def disk(radius, *, size=None) -> jnp.ndarray:
    """Anti-aliased pillbox (defocus) kernel, centred on (kh // 2, kw // 2), sum 1.

    Each tap is proportional to the fraction of its pixel square covered by
    the disk of the given radius (estimated with 16 x 16 sub-samples per
    pixel), like MATLAB's ``fspecial('disk')``; before normalisation interior
    taps are 1 and the total is pi * radius^2 (up to the sub-sampling error).

    Args:
      radius: disk radius in pixels, > 0; may be traced when `size` is given.
      size: int or (kh, kw); default 2 * ceil(radius - 0.5) + 1, the smallest
        odd square holding the disk. A smaller size truncates the disk.

    Returns:
      (kh, kw) float32.
    """
    _check_positive(radius, "radius")
    if size is None:
        if isinstance(radius, jax.core.Tracer):
            raise ValueError("disk: pass `size` when `radius` is traced (the size must be static)")
        size = 2 * math.ceil(float(radius) - 0.5) + 1
    kh, kw = _size_pair(size)
    return _disk(jnp.asarray(radius, jnp.float32), kh=kh, kw=kw)


@functools.partial(jax.jit, static_argnames=("kh", "kw"))
def _disk(radius: jnp.ndarray, *, kh: int, kw: int) -> jnp.ndarray:
    n = _DISK_SUPERSAMPLING
    sub = (jnp.arange(n, dtype=jnp.float32) + 0.5) / n - 0.5
    y = (jnp.arange(kh, dtype=jnp.float32) - kh // 2)[:, None] + sub[None, :]  # (kh, n)
    x = (jnp.arange(kw, dtype=jnp.float32) - kw // 2)[:, None] + sub[None, :]  # (kw, n)
    r2 = y[:, None, :, None] ** 2 + x[None, :, None, :] ** 2  # (kh, kw, n, n)
    coverage = jnp.mean(r2 <= radius**2, axis=(2, 3))
    return coverage / jnp.sum(coverage)


def _rotate(v: jnp.ndarray, angle: jnp.ndarray) -> jnp.ndarray:
    """Rotate a (y, x) vector by `angle` radians (counter-clockwise in (x, y))."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([s * v[1] + c * v[0], c * v[1] - s * v[0]])


def _trajectory(uniforms: jnp.ndarray, num_points: int, length, anxiety) -> jnp.ndarray:
    """Boracchi & Foi's inertial random walk: (num_points, 2) (y, x) positions in px.

    Constant speed length / (num_points - 1) from the origin. Each step the
    velocity gets a Gaussian kick, a pull back towards the origin
    (centripetal) and, rarely, an impulsive shake that reverses it (angle
    pi +- 0.5 rad, doubled); it is then renormalised to the constant speed.
    The per-trajectory rates are drawn as in the original model: centripetal
    U(0, 0.7), shake probability U(0, 0.2), Gaussian term U(0, 10); all act
    scaled by `anxiety`. They are rescaled from the model's 2000-sample
    resolution so that `num_points` only changes the sampling density
    (Gaussian kicks add in variance, drift and shake rate add linearly).

    `uniforms` holds the 4 + 4 * (num_points - 1) U(0, 1) numbers it consumes
    (a single draw: each separate `jax.random` call adds seconds of compile
    time on a CPU).
    """
    steps = num_points - 1
    centripetal, shake_prob, gauss = uniforms[:3] * jnp.array([0.7, 0.2, 10.0])
    angle0 = 2 * jnp.pi * uniforms[3]
    shake_u, turn_u, kick_u = jnp.split(uniforms[4:], [steps, 2 * steps])
    ratio = (_BORACCHI_SAMPLES - 1) / steps
    speed = length / steps
    vel0 = speed * jnp.stack([jnp.sin(angle0), jnp.cos(angle0)])
    shakes = shake_u < jnp.minimum(1.0, shake_prob * anxiety * ratio)
    turns = jnp.pi + turn_u - 0.5
    kicks = ndtri(kick_u).reshape(steps, 2)

    def step(carry, inputs):
        pos, vel = carry
        shake, turn, kick = inputs
        impulse = jnp.where(shake, 2.0 * _rotate(vel, turn), 0.0)
        drift = anxiety * speed * (gauss * math.sqrt(ratio) * kick - centripetal * ratio * pos)
        vel = vel + impulse + drift
        vel = vel * speed / jnp.maximum(jnp.linalg.norm(vel), 1e-12)
        pos = pos + vel
        return (pos, vel), pos

    _, path = lax.scan(step, (jnp.zeros(2), vel0), (shakes, turns, kicks))
    return jnp.concatenate([jnp.zeros((1, 2)), path], axis=0)


def _splat(points: jnp.ndarray, weights: jnp.ndarray, shape: tuple[int, int]) -> jnp.ndarray:
    """Bilinear splatting of weighted (y, x) points (in-range) onto a zero grid.

    Preserves the total weight and the weighted centroid exactly.
    """
    kh, kw = shape
    points = jnp.clip(points, 0.0, jnp.array([kh - 1.0, kw - 1.0]))
    base = jnp.floor(points)
    fy, fx = (points - base).T
    iy, ix = base.astype(jnp.int32).T
    rows = jnp.concatenate([iy, iy, iy + 1, iy + 1])
    cols = jnp.concatenate([ix, ix + 1, ix, ix + 1])
    taps = jnp.tile(weights, 4) * jnp.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    return jnp.zeros(shape, jnp.float32).at[rows, cols].add(taps, mode="drop")


def motion(key, size, *, length=None, anxiety=None, exposure=1.0, num_points: int = 256) -> jnp.ndarray:
    """Random camera-shake kernel from Boracchi & Foi's trajectory model.

    A 2-D inertial random walk with impulsive shakes (see `_trajectory`) is
    sampled at `num_points` points; the first `exposure` fraction of it is
    integrated into the kernel by bilinear splatting (sub-pixel accurate). The
    trajectory's centroid is placed exactly on the centre tap
    (kh // 2, kw // 2), so the kernel's centre of mass is the centre; a
    trajectory that would not fit is shrunk about its centroid until it does
    (`length` is then an upper bound). With anxiety 0 it is a straight segment.

    Args:
      key: a JAX PRNG key.
      size: kh = kw (int) or (kh, kw); static.
      length: total trajectory length in pixels; default drawn uniformly in
        [0.3, 1.0] * (min(kh, kw) - 1) (curved paths span less than their
        length: for size 31 the median extent is about 10 px). May be traced.
      anxiety: shake intensity (Boracchi & Foi's "anxiety", the per-sample
        rate at their 2000-sample resolution); 0 gives straight lines, ~0.005
        gently curved paths, >= 0.02 jittery ones. Default drawn uniformly in
        [0.001, 0.008]. May be traced.
      exposure: fraction of the trajectory in (0, 1] integrated (Boracchi &
        Foi's exposure time T). May be traced.
      num_points: trajectory samples (static); spacing is length / (num_points - 1).

    Returns:
      (kh, kw) float32, non-negative, sum 1. Use `jax.vmap` over keys for a batch.
    """
    kh, kw = _size_pair(size)
    if int(num_points) != num_points or num_points < 2:
        raise ValueError(f"num_points must be an int >= 2, got {num_points!r}")
    num_points = int(num_points)
    _check_positive(exposure, "exposure")
    return _motion(key, length, anxiety, exposure, kh=kh, kw=kw, num_points=num_points)


@functools.partial(jax.jit, static_argnames=("kh", "kw", "num_points"))
def _motion(key, length, anxiety, exposure, *, kh: int, kw: int, num_points: int) -> jnp.ndarray:
    """`motion` after its argument checks, compiled once per shape (also when called eagerly under vmap)."""
    # One draw for everything (see `_trajectory`); u[0], u[1] are used only for defaults,
    # so for a fixed key the random choices do not depend on the arguments given.
    u = jax.random.uniform(key, (6 + 4 * (num_points - 1),), minval=jnp.finfo(jnp.float32).tiny)
    if length is None:
        length = (0.3 + 0.7 * u[0]) * (min(kh, kw) - 1)
    if anxiety is None:
        anxiety = 0.001 + 0.007 * u[1]
    path = _trajectory(u[2:], num_points, jnp.asarray(length, jnp.float32), jnp.asarray(anxiety, jnp.float32))
    weights = (jnp.arange(num_points) <= exposure * (num_points - 1)).astype(jnp.float32)
    centroid = jnp.sum(weights[:, None] * path, axis=0) / jnp.sum(weights)
    offsets = jnp.where(weights[:, None] > 0, path - centroid, 0.0)
    centre = jnp.array([kh // 2, kw // 2], jnp.float32)
    room_low = centre  # pixels available before / after the centre tap
    room_high = jnp.array([kh - 1, kw - 1], jnp.float32) - centre
    reach_low = jnp.maximum(-jnp.min(offsets, axis=0), 1e-12)
    reach_high = jnp.maximum(jnp.max(offsets, axis=0), 1e-12)
    shrink = jnp.minimum(1.0, jnp.min(jnp.minimum(room_low / reach_low, room_high / reach_high)))
    grid = _splat(centre + shrink * offsets, weights, (kh, kw))
    return grid / jnp.sum(grid)


@jax.jit
def normalize(k) -> jnp.ndarray:
    """Clip negative taps to 0 and scale to sum 1 (batched).

    A kernel with no positive tap becomes the identity kernel (a delta at the
    centre tap) instead of NaNs.
    """
    k = jnp.maximum(_check_kernel(k), 0.0)
    total = jnp.sum(k, axis=(-2, -1), keepdims=True)
    return jnp.where(total > 0, k / jnp.where(total > 0, total, 1.0), _centre_delta(k.shape))


def _shift_matrix(n: int, shift: jnp.ndarray) -> jnp.ndarray:
    """(..., n, n) linear-interpolation matrix M with (M @ v)[i] = v(i - shift), zeros outside."""
    i = jnp.arange(n, dtype=jnp.float32)
    dist = i[:, None] - shift[..., None, None] - i[None, :]
    return jnp.maximum(0.0, 1.0 - jnp.abs(dist))


@jax.jit
def center_of_mass(k) -> jnp.ndarray:
    """(..., 2) centre of mass (row, col) of kernels (..., kh, kw) in tap coordinates (batched)."""
    k = _check_kernel(k)
    kh, kw = k.shape[-2:]
    total = jnp.sum(k, axis=(-2, -1))
    cy = jnp.sum(jnp.sum(k, axis=-1) * jnp.arange(kh), axis=-1) / total
    cx = jnp.sum(jnp.sum(k, axis=-2) * jnp.arange(kw), axis=-1) / total
    return jnp.stack([cy, cx], axis=-1)


@functools.partial(jax.jit, static_argnames=("subpixel",))
def center(k, *, subpixel: bool = False) -> jnp.ndarray:
    """Shift kernels so that their centre of mass lies on the centre tap (kh // 2, kw // 2) (batched).

    With subpixel=False (default) the shift is the rounded offset: taps move
    without resampling and the centre of mass ends within 0.5 px of the
    centre. With subpixel=True the exact offset is applied by bilinear
    interpolation, which puts the centre of mass on the centre (up to mass
    lost at the border) at the price of a slight smoothing. Mass shifted
    beyond the support is lost; the result is clipped and renormalised
    (`normalize`).
    """
    k = _check_kernel(k)
    kh, kw = k.shape[-2:]
    shift = jnp.array([kh // 2, kw // 2], jnp.float32) - center_of_mass(k)
    if not subpixel:
        shift = jnp.round(shift)
    rows = _shift_matrix(kh, shift[..., 0])
    cols = _shift_matrix(kw, shift[..., 1])
    moved = jnp.einsum("...ij,...jk,...lk->...il", rows, k, cols, precision=lax.Precision.HIGHEST)
    return normalize(moved)


def pad_to(k, size) -> jnp.ndarray:
    """Zero-pad kernels (..., kh, kw) to (..., H, W), keeping the centre tap on the centre (batched).

    The tap (kh // 2, kw // 2) moves to (H // 2, W // 2): H // 2 - kh // 2 rows
    are added above, the rest below (symmetric for odd -> odd sizes).

    Args:
      k: kernels (..., kh, kw).
      size: (H, W), at least (kh, kw).

    Returns:
      (..., H, W) kernels.
    """
    k = _check_kernel(k)
    kh, kw = k.shape[-2:]
    h, w = _size_pair(size)
    if h < kh or w < kw:
        raise ValueError(f"pad_to: target size {(h, w)} is smaller than the kernel {(kh, kw)}; use crop_to")
    top, left = h // 2 - kh // 2, w // 2 - kw // 2
    pads = [(0, 0)] * (k.ndim - 2) + [(top, h - kh - top), (left, w - kw - left)]
    return jnp.pad(k, pads)


def crop_to(k, size) -> jnp.ndarray:
    """Crop kernels (..., kh, kw) to (..., H, W) around the centre tap (batched); inverse of `pad_to`.

    The tap (kh // 2, kw // 2) becomes (H // 2, W // 2). Taps outside are
    dropped and the result is NOT renormalised (apply `normalize` if needed).

    Args:
      k: kernels (..., kh, kw).
      size: (H, W), at most (kh, kw).

    Returns:
      (..., H, W) kernels.
    """
    k = _check_kernel(k)
    kh, kw = k.shape[-2:]
    h, w = _size_pair(size)
    if h > kh or w > kw:
        raise ValueError(f"crop_to: target size {(h, w)} is larger than the kernel {(kh, kw)}; use pad_to")
    top, left = kh // 2 - h // 2, kw // 2 - w // 2
    return k[..., top : top + h, left : left + w]


def resized_size(n: int, scale: float) -> int:
    """Side length `resize` gives for a side n.

    Args:
      n: the side length.
      scale: the resize factor.

    Returns:
      n * scale rounded (half up), to the nearest odd number if n is odd; >= 1.
    """
    if n % 2:
        return max(1, 2 * math.floor((n * scale - 1) / 2 + 0.5) + 1)
    return max(1, math.floor(n * scale + 0.5))


@functools.partial(jax.jit, static_argnames=("scale",))
def resize(k, scale: float) -> jnp.ndarray:
    """Resample kernels (..., kh, kw) by a spatial factor, renormalised to sum 1 (batched).

    The output side is `resized_size(kh, scale)` (odd sides stay odd). The
    kernel is treated as a continuous PSF scaled about its centre tap, which
    maps onto the output's centre tap: bilinear interpolation when
    upsampling, an antialiasing triangle filter of width 1 / scale when
    downsampling (`jax.image.scale_and_translate` with antialias). Used to
    move kernels between the scales of coarse-to-fine methods, where the
    image is resampled by the same factor.

    Args:
      k: (..., kh, kw) kernels.
      scale: a positive Python float (it fixes the output shape).
    """
    k = _check_kernel(k)
    if not np.isscalar(scale) or not scale > 0:
        raise ValueError(f"scale must be a positive Python number, got {scale!r}")
    kh, kw = k.shape[-2:]
    oh, ow = resized_size(kh, scale), resized_size(kw, scale)
    translation = jnp.array([oh // 2 + 0.5 - (kh // 2 + 0.5) * scale, ow // 2 + 0.5 - (kw // 2 + 0.5) * scale])
    out = jax.image.scale_and_translate(
        k,
        k.shape[:-2] + (oh, ow),
        spatial_dims=(k.ndim - 2, k.ndim - 1),
        scale=jnp.array([scale, scale], jnp.float32),
        translation=translation,
        method="linear",
        antialias=True,
    )
    return normalize(out)


def flip(k) -> jnp.ndarray:
    """Rotate kernels by 180 degrees (batched): turns a correlation kernel into a convolution one and back.

    Args:
      k: kernels (..., kh, kw).

    Returns:
      the kernels rotated, same shape.
    """
    return jnp.asarray(k)[..., ::-1, ::-1]


@jax.jit
def to_image(k) -> jnp.ndarray:
    """Viewable kernels (batched): negatives clipped, divided by the maximum so the peak is 1.

    An all-zero kernel stays zero. Returns float32 in [0, 1], same shape.
    """
    k = jnp.maximum(_check_kernel(k), 0.0)
    peak = jnp.max(k, axis=(-2, -1), keepdims=True)
    return k / jnp.where(peak > 0, peak, 1.0)


__all__ = [
    "gaussian",
    "disk",
    "motion",
    "normalize",
    "center_of_mass",
    "center",
    "pad_to",
    "crop_to",
    "resized_size",
    "resize",
    "flip",
    "to_image",
]
