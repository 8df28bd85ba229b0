"""Synthetic degradation on device: random kernels or kernel fields, blur, noise, quantisation.

The host pipeline (`jaxdeblur.data.pipeline`) delivers sharp tiles of side
``tile_size(cfg) = cfg.crop + cfg.kernel_size - 1``; `degrade` turns a batch of
them into aligned training pairs inside the jitted train step:

1. augmentation (``cfg.augment``): each tile goes through one of the 8
   flips / 90-degree rotations (the dihedral group), uniformly drawn;
2. a blur kernel per image in one fixed (kernel_size, kernel_size) support
   (a batch needs one array shape), its kind drawn with ``cfg.kind_probs``
   among `KERNEL_KINDS`, its size drawn uniformly in the kind's range:

   * "motion": `jaxdeblur.kernels.motion` camera-shake trajectory of length
     U(cfg.motion_length) px and anxiety U(cfg.motion_anxiety); a path that
     does not fit the support is shrunk about its centroid, so the length is
     an upper bound of the path drawn;
   * "gaussian": `jaxdeblur.kernels.gaussian`, sigma U(cfg.gaussian_sigma) px;
   * "disk": `jaxdeblur.kernels.disk` (defocus), radius U(cfg.disk_radius) px.

   Every generator renders directly into the full support (smaller kernels
   are zero around their centre), centred on the centre tap;
3. with probability ``cfg.spatially_varying`` an image gets a kernel FIELD
   instead: a (gh, gw) = cfg.grid of independent motion kernels (same
   ranges) at nodes spread evenly over the crop, corners included, bilinearly
   interpolated between the nodes (`kernel_field`);
4. "valid" blur of the tile, so the blurred crop (crop, crop) and the sharp
   crop (the tile's centre) are aligned with no boundary effect, exactly as
   `jaxdeblur.data.synthetic_set` does;
5. white Gaussian noise of a per-image sigma U(cfg.noise_sigma) (image units,
   0.01 = 2.55 gray levels; `jaxdeblur.noise.add_gaussian_noise`), then, with
   ``cfg.quantize``, clipping to [0, 1] and rounding to 8-bit levels.

Kernels follow the library's convention (TRUE convolution, centre tap
(k // 2, k // 2), non-negative, sum 1; `jaxdeblur.forward.blur`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxdeblur import kernels
from jaxdeblur.forward import blur
from jaxdeblur.noise import add_gaussian_noise

KERNEL_KINDS = ("motion", "gaussian", "disk")
_DIHEDRAL = 8  # flips and 90-degree rotations of a square


@dataclasses.dataclass(frozen=True)
class DegradeConfig:
    """How `degrade` turns sharp tiles into training pairs (hashable: a static jit argument).

    Attributes:
      crop: side of the output crops in pixels (blurred and sharp are crop x crop).
      kernel_size: odd side of the kernel support in pixels; every kernel of
        every kind lives in it. The host tile side is `tile_size(cfg)`.
      kind_probs: probabilities of the kernel kinds `KERNEL_KINDS` (motion,
        gaussian, disk) for uniformly blurred images; non-negative, sum 1.
        A kind of probability 0 is not computed at all.
      motion_length: (min, max) trajectory length in pixels, drawn uniformly.
      motion_anxiety: (min, max) shake intensity (`kernels.motion`), uniform.
      gaussian_sigma: (min, max) standard deviation in pixels, uniform; max
        at most (kernel_size - 1) / 4 so that +-2 sigma lies in the support
        (not checked when the kind's probability is 0).
      disk_radius: (min, max) radius in pixels, uniform; max at most
        kernel_size / 2 so that the disk lies in the support (idem).
      spatially_varying: probability in [0, 1] that an image gets a kernel
        field (a `grid` of motion kernels) instead of one kernel. With 0 the
        field code is not compiled and every `kernel_grid` is (1, 1).
      grid: (gh, gw) motion kernels per field, each in [1, crop].
      noise_sigma: (min, max) Gaussian noise standard deviation in [0, 1]
        image units, drawn uniformly per image; (0, 0) for no noise.
      quantize: clip the noisy image to [0, 1] and round it to 8-bit levels
        (like a saved photo); False leaves the plain Gaussian model.
      augment: random flips / 90-degree rotations of each tile.
    """

    crop: int = 128
    kernel_size: int = 31
    kind_probs: tuple[float, float, float] = (0.8, 0.1, 0.1)
    motion_length: tuple[float, float] = (8.0, 30.0)
    motion_anxiety: tuple[float, float] = (0.001, 0.008)
    gaussian_sigma: tuple[float, float] = (0.5, 3.0)
    disk_radius: tuple[float, float] = (1.0, 6.0)
    spatially_varying: float = 0.0
    grid: tuple[int, int] = (3, 3)
    noise_sigma: tuple[float, float] = (0.0, 0.02)
    quantize: bool = True
    augment: bool = True

    def __post_init__(self):
        _check_int("crop", self.crop, minimum=1)
        _check_int("kernel_size", self.kernel_size, minimum=1)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"DegradeConfig.kernel_size must be odd (a centre tap), got {self.kernel_size}")
        probs = _check_tuple("kind_probs", self.kind_probs, len(KERNEL_KINDS))
        if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"DegradeConfig.kind_probs must be {len(KERNEL_KINDS)} non-negative numbers summing to 1 "
                             f"(for {KERNEL_KINDS}), got {self.kind_probs}")
        _check_range("motion_length", self.motion_length, positive=True)
        _check_range("motion_anxiety", self.motion_anxiety, positive=False)
        # A kind that is never drawn may keep ranges that do not fit this support.
        gaussian_p, disk_p = probs[KERNEL_KINDS.index("gaussian")], probs[KERNEL_KINDS.index("disk")]
        _check_range("gaussian_sigma", self.gaussian_sigma, positive=True,
                     maximum=(self.kernel_size - 1) / 4 if gaussian_p > 0 else None)
        _check_range("disk_radius", self.disk_radius, positive=True,
                     maximum=self.kernel_size / 2 if disk_p > 0 else None)
        _check_range("noise_sigma", self.noise_sigma, positive=False)
        if not (isinstance(self.spatially_varying, (int, float)) and 0.0 <= self.spatially_varying <= 1.0):
            raise ValueError(
                f"DegradeConfig.spatially_varying must be a probability in [0, 1], got {self.spatially_varying!r}"
            )
        grid = _check_tuple("grid", self.grid, 2)
        for g in grid:
            _check_int("grid", g, minimum=1, maximum=self.crop)
        for name in ("quantize", "augment"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"DegradeConfig.{name} must be a bool, got {getattr(self, name)!r}")


def _check_int(name: str, value, *, minimum: int, maximum: int | None = None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    if not ok or (maximum is not None and value > maximum):
        bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"DegradeConfig.{name} must be an integer {bound}, got {value!r}")


def _check_tuple(name: str, value, length: int) -> tuple:
    if not isinstance(value, tuple) or len(value) != length:
        raise ValueError(f"DegradeConfig.{name} must be a tuple of {length} numbers, got {value!r}")
    return value


def _check_range(name: str, value, *, positive: bool, maximum: float | None = None) -> None:
    low, high = _check_tuple(name, value, 2)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
        raise ValueError(f"DegradeConfig.{name} must be two finite numbers (min, max), got {value!r}")
    if (low <= 0 if positive else low < 0) or low > high:
        sign = "0 < min" if positive else "0 <= min"
        raise ValueError(f"DegradeConfig.{name} must be an ordered range {sign} <= max, got {value!r}")
    if maximum is not None and high > maximum:
        raise ValueError(f"DegradeConfig.{name} max {high} exceeds {maximum:g}, the largest that fits kernel_size")


def tile_size(cfg: DegradeConfig) -> int:
    """Side in pixels of the sharp tiles `degrade` needs: crop + kernel_size - 1 ("valid" blur)."""
    return cfg.crop + cfg.kernel_size - 1


def _uniform(u: jnp.ndarray, bounds: tuple[float, float]) -> jnp.ndarray:
    """Map U(0, 1) draws onto U(bounds)."""
    low, high = bounds
    return low + (high - low) * u


def _dihedral(x: jnp.ndarray, code: jnp.ndarray) -> jnp.ndarray:
    """One of the 8 flips / rotations of a square x (S, S, ...): code bits = transpose, flip rows, flip columns."""
    x = jnp.where(code & 1, jnp.swapaxes(x, 0, 1), x)
    x = jnp.where(code & 2, x[::-1], x)
    return jnp.where(code & 4, x[:, ::-1], x)


def _apply_dihedral(x: jnp.ndarray, codes: jnp.ndarray) -> jnp.ndarray:
    """Per-image `_dihedral` of a batch x (N, S, S, ...) with codes (N,) in [0, 8)."""
    return jax.vmap(_dihedral)(x, codes)


def _motion_kernels(keys: jnp.ndarray, u: jnp.ndarray, cfg: DegradeConfig) -> jnp.ndarray:
    """Motion kernels (M, k, k) from keys (M,) and uniforms u (M, 2) (length, anxiety)."""
    length = _uniform(u[:, 0], cfg.motion_length)
    anxiety = _uniform(u[:, 1], cfg.motion_anxiety)
    return jax.vmap(lambda key, l, a: kernels.motion(key, cfg.kernel_size, length=l, anxiety=a))(keys, length, anxiety)


def _uniform_kernels(motion: jnp.ndarray | None, u: jnp.ndarray, cfg: DegradeConfig) -> jnp.ndarray:
    """One kernel per image (N, k, k) from motion kernels (N, k, k) and uniforms u (N, 3): kind, sigma, radius."""
    size = cfg.kernel_size
    candidates = {
        "motion": lambda: motion,
        "gaussian": lambda: jax.vmap(lambda s: kernels.gaussian(size, s))(_uniform(u[:, 1], cfg.gaussian_sigma)),
        "disk": lambda: jax.vmap(lambda r: kernels.disk(r, size=size))(_uniform(u[:, 2], cfg.disk_radius)),
    }
    probs = np.asarray(cfg.kind_probs, np.float64)
    active = [i for i, p in enumerate(probs) if p > 0]
    if len(active) == 1:
        return candidates[KERNEL_KINDS[active[0]]]()
    # kind i is picked when u falls in [cum[i-1], cum[i]); the last active kind takes the rounding slack.
    bounds = jnp.asarray(np.cumsum(probs[active])[:-1], jnp.float32)
    choice = jnp.sum(u[:, 0:1] >= bounds[None, :], axis=1)
    stack = jnp.stack([candidates[KERNEL_KINDS[i]]() for i in active])  # (kinds, N, k, k)
    return jnp.take_along_axis(stack, choice[None, :, None, None], axis=0)[0]


def _hat_weights(nodes: int, length: int) -> jnp.ndarray:
    """(nodes, length) linear-interpolation weights of `nodes` evenly spread nodes (ends included) over `length` px."""
    if nodes == 1:
        return jnp.ones((1, length), jnp.float32)
    position = jnp.arange(length, dtype=jnp.float32) * ((nodes - 1) / max(length - 1, 1))
    return jnp.maximum(0.0, 1.0 - jnp.abs(position[None, :] - jnp.arange(nodes, dtype=jnp.float32)[:, None]))


def field_weights(grid_shape: tuple[int, int], size: tuple[int, int]) -> jnp.ndarray:
    """(gh, gw, H, W) bilinear weights of grid node (i, j) at pixel (y, x); they sum to 1 at every pixel.

    Node (i, j) sits at pixel (i * (H - 1) / (gh - 1), j * (W - 1) / (gw - 1))
    (the corner nodes on the corner pixels); a single node row/column covers
    the whole axis with weight 1.
    """
    gh, gw = grid_shape
    h, w = size
    return _hat_weights(gh, h)[:, None, :, None] * _hat_weights(gw, w)[None, :, None, :]


@functools.partial(jax.jit, static_argnames=("size",))
def kernel_field(grid, size) -> jnp.ndarray:
    """Per-pixel kernels from a kernel grid: (N, gh, gw, k, k) -> (N, H, W, k, k).

    The kernel at pixel (y, x) of an H x W crop is the bilinear interpolation
    of the grid's kernels (`field_weights`); it is non-negative and sums to 1
    when the grid's kernels do. ``blur_spatially_varying`` of the tile with
    this field (edge-padded to the tile) gives `degrade`'s blurred crop.

    Args:
      grid: (N, gh, gw, k, k) kernels, e.g. `degrade`'s "kernel_grid".
      size: the crop side H = W (int) or (H, W), static.
    """
    grid = jnp.asarray(grid, jnp.float32)
    if grid.ndim != 5:
        raise ValueError(f"grid must have shape (N, gh, gw, k, k), got {grid.shape}")
    h, w = (size, size) if np.ndim(size) == 0 else tuple(size)
    return jnp.einsum("ghyx,nghab->nyxab", field_weights(grid.shape[1:3], (h, w)), grid)


@jax.jit
def blur_kernel_grid(tiles, grid) -> jnp.ndarray:
    """"valid" blur of tiles by the kernel field interpolated from a grid (a weighted sum of uniform blurs).

    out = sum_g weight_g * blur(tiles, grid_g, "valid"), with the bilinear
    weights of `field_weights` over the output pixels: the same as blurring
    every output pixel with its own kernel of `kernel_field(grid, out size)`
    (the interpolation is linear in the kernels), at the cost of gh * gw FFT
    blurs instead of a per-pixel gather.

    Args:
      tiles: (N, T, T', C) float images.
      grid: (N, gh, gw, k, k) kernels.

    Returns:
      (N, T - k + 1, T' - k + 1, C) float32.
    """
    tiles = jnp.asarray(tiles, jnp.float32)
    grid = jnp.asarray(grid, jnp.float32)
    if tiles.ndim != 4 or grid.ndim != 5 or tiles.shape[0] != grid.shape[0]:
        raise ValueError(
            f"need tiles (N, T, T, C) and grid (N, gh, gw, k, k) with the same N, got {tiles.shape} and {grid.shape}"
        )
    n, gh, gw, kh, kw = grid.shape
    nodes = gh * gw
    blurred = blur(jnp.repeat(tiles, nodes, axis=0), grid.reshape(n * nodes, kh, kw), "valid")
    blurred = blurred.reshape(n, gh, gw, *blurred.shape[1:])
    weights = field_weights((gh, gw), blurred.shape[3:5])
    return jnp.einsum("ghyx,nghyxc->nyxc", weights, blurred)


def _check_tiles(tiles, cfg: DegradeConfig) -> None:
    if not isinstance(cfg, DegradeConfig):
        raise TypeError(f"cfg must be a DegradeConfig, got {type(cfg).__name__}")
    side = tile_size(cfg)
    if tiles.ndim != 4 or tiles.shape[1:3] != (side, side):
        raise ValueError(
            f"tiles must have shape (N, {side}, {side}, C) for crop {cfg.crop} and kernel_size {cfg.kernel_size} "
            f"(tile_size(cfg) = crop + kernel_size - 1), got {tiles.shape}"
        )
    if not jnp.issubdtype(tiles.dtype, jnp.floating):
        raise TypeError(f"tiles must be floating point in [0, 1], got dtype {tiles.dtype}")


@functools.partial(jax.jit, static_argnames=("cfg",))
def degrade(key, tiles, cfg: DegradeConfig) -> dict[str, jnp.ndarray]:
    """Blurred / sharp training pairs from sharp tiles (jitted, batched, deterministic by key).

    See the module docstring for the steps. The same key and tiles give the
    same outputs; image i's draws depend on the key and the batch size N.

    Args:
      key: a JAX PRNG key.
      tiles: (N, T, T, C) sharp images in [0, 1], T = tile_size(cfg)
        (the host pipeline's tiles).
      cfg: a `DegradeConfig` (static: each config compiles once per shape).

    Returns:
      {"blurred": (N, crop, crop, C) float32, the degraded input;
       "sharp": (N, crop, crop, C) float32, the (augmented) tile's centre,
         aligned with "blurred";
       "kernel": (N, k, k) float32, the kernel of a uniformly blurred image,
         or the pixel average of the field of a spatially varying one;
       "kernel_grid": (N, gh, gw, k, k) float32 with (gh, gw) = cfg.grid if
         cfg.spatially_varying > 0 else (1, 1): the field's node kernels
         (`kernel_field` expands them to per-pixel kernels; a uniformly
         blurred image has its kernel at every node);
       "noise_sigma": (N,) float32, the noise level drawn (image units)}.
    """
    tiles = jnp.asarray(tiles)
    _check_tiles(tiles, cfg)
    tiles = tiles.astype(jnp.float32)
    n = tiles.shape[0]
    gh, gw = cfg.grid if cfg.spatially_varying > 0 else (1, 1)
    nodes = gh * gw if cfg.spatially_varying > 0 else 0
    key_u, key_motion, key_noise = jax.random.split(key, 3)
    # One draw for all per-image scalars (each separate draw costs compile time on CPUs).
    u = jax.random.uniform(key_u, (n, 8 + 2 * nodes))

    if cfg.augment:
        tiles = _apply_dihedral(tiles, jnp.floor(_DIHEDRAL * u[:, 0]).astype(jnp.int32))
    offset = (cfg.kernel_size - 1) // 2
    sharp = tiles[:, offset : offset + cfg.crop, offset : offset + cfg.crop]

    motion = None
    if cfg.kind_probs[KERNEL_KINDS.index("motion")] > 0 or nodes:
        # One call for the images' and the field nodes' motion kernels (one compiled trajectory loop).
        motion_u = jnp.concatenate([u[:, 4:6], u[:, 8:].reshape(n * nodes, 2)])
        motion = _motion_kernels(jax.random.split(key_motion, n * (1 + nodes)), motion_u, cfg)
    kernel = _uniform_kernels(None if motion is None else motion[:n], u[:, 1:4], cfg)
    if nodes:
        node_kernels = motion[n:]
        varying = u[:, 6] < cfg.spatially_varying
        grid = jnp.where(varying[:, None, None, None, None], node_kernels.reshape(n, gh, gw, *kernel.shape[1:]),
                         kernel[:, None, None])
        blurred = blur_kernel_grid(tiles, grid)
        mean_weights = jnp.mean(field_weights((gh, gw), (cfg.crop, cfg.crop)), axis=(2, 3))
        kernel = jnp.where(varying[:, None, None], jnp.einsum("gh,nghab->nab", mean_weights, grid), kernel)
    else:
        grid = kernel[:, None, None]
        blurred = blur(tiles, kernel, "valid")

    sigma = _uniform(u[:, 7], cfg.noise_sigma)
    q = cfg.quantize
    blurred = add_gaussian_noise(key_noise, blurred, sigma[:, None, None, None], quantize=q, clip=q)
    return {"blurred": blurred, "sharp": sharp, "kernel": kernel, "kernel_grid": grid, "noise_sigma": sigma}


@jax.jit
def augment(key, batch: dict) -> dict:
    """The same random flip / 90-degree rotation per image applied to every entry of a paired batch.

    For real pairs (e.g. `PairedFolder` crops), drawn uniformly among the 8
    elements of the dihedral group, deterministic by key. Every entry must
    be (N, S, S, ...) with square axes 1, 2 (images (N, S, S, C), also
    kernels (N, k, k): the blur of a transformed image by the transformed
    kernel is the transformed blur); entries may have different S.

    Args:
      key: a JAX PRNG key.
      batch: {name: (N, S, S, ...) array}, e.g. {"blurred", "sharp"}.

    Returns:
      {name: array} of the same shapes and dtypes, pairs still aligned.
    """
    sizes = {name: np.shape(x)[:3] for name, x in batch.items()}
    counts = {s[0] for s in sizes.values() if len(s) == 3}
    bad = [name for name, s in sizes.items() if len(s) < 3 or s[1] != s[2]]
    if bad or len(counts) != 1:
        raise ValueError(f"augment needs entries (N, S, S, ...) with square axes 1, 2 and one N, got {sizes}")
    codes = jax.random.randint(key, (counts.pop(),), 0, _DIHEDRAL)
    return {name: _apply_dihedral(jnp.asarray(x), codes) for name, x in batch.items()}


__all__ = [
    "KERNEL_KINDS",
    "DegradeConfig",
    "augment",
    "blur_kernel_grid",
    "degrade",
    "field_weights",
    "kernel_field",
    "tile_size",
]
