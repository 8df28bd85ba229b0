"""Forward blur model: uniform and spatially varying blur, its adjoint and OTFs.

Convention
----------
`blur` is a TRUE 2-D convolution (the kernel is flipped before it slides):

    out[i, j] = sum_{a, b} k[a, b] * x[i + kh // 2 - a, j + kw // 2 - b]

so the kernel centre (kh // 2, kw // 2) lands on the output pixel, exactly as
`scipy.ndimage.convolve` (also for even kernel sizes). `correlate` slides the
kernel without flipping it (= `blur` with the kernel rotated 180 degrees);
SelfDeblur's code and the Levin et al. blurred images use correlation, so a
Levin kernel `k` reproduces its data through `correlate(x, k)`, or
equivalently `blur(x, k[::-1, ::-1])`.

Shapes: images (H, W), (H, W, C) or (N, H, W, C), float32; a kernel (kh, kw)
blurs every image and channel, per-image kernels (N, kh, kw) need an
(N, H, W, C) batch. The public functions are pure, jit-compiled (modes,
methods, shapes and chunk sizes static) and grad/vmap-able; shape and dtype
checks run in Python at trace time.

Boundary modes (`mode`), named after the padding they apply to `x`:

* "valid": no padding, output (H - kh + 1, W - kw + 1).
* "same": zero padding (`scipy.ndimage` mode "constant", cval 0).
* "circular": periodic padding (`scipy.ndimage` mode "wrap").
* "reflect": mirror WITHOUT repeating the edge pixel, ``d c b | a b c d | c b a``:
  numpy/`jnp.pad` "reflect", PyTorch `ReflectionPad2d`, `scipy.ndimage` "mirror"
  (NOT scipy's own "reflect", which repeats the edge pixel).
* "replicate": edge-pixel padding (`scipy.ndimage` "nearest", numpy "edge",
  PyTorch `ReplicationPad2d`).

Methods (`method`): "direct" runs `lax.conv_general_dilated` (which
correlates, so the kernel is flipped first); "fft" multiplies rfft2 spectra of
the padded arrays (zero-padded to a 5-smooth length, then cropped; "circular"
uses the OTF of the kernel directly). Both agree to ~1e-6 and are
differentiable in `x` and `k`. "auto" picks by the rule in `_auto_method`,
measured with `experiments/bench_blur.py` (results in
`experiments/results/bench_blur_cpu.json`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

MODES = ("valid", "same", "circular", "reflect", "replicate")
METHODS = ("auto", "fft", "direct")
_PAD_MODE = {"same": "constant", "circular": "wrap", "reflect": "reflect", "replicate": "edge"}

# "auto" crossover, measured on a 2-core x86 CPU (XLA CPU, jax 0.10.2) by
# experiments/bench_blur.py: FFT wins once the kernel has more taps than this.
_AUTO_MAX_DIRECT_TAPS = 1


def _check_floating(name: str, a) -> None:
    dtype = jnp.result_type(a)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name} must be a floating-point array, got dtype {dtype}; "
            "convert 8-bit images to float32 in [0, 1] with x / 255."
        )


def _check_inputs(x, k, mode: str, method: str = "auto") -> None:
    """Python-level checks of shapes, dtypes and options (run at trace time)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_floating("x", x)
    _check_floating("k", k)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have shape (H, W), (H, W, C) or (N, H, W, C), got {x.shape}")
    if k.ndim not in (2, 3):
        raise ValueError(f"k must have shape (kh, kw) or per-image (N, kh, kw), got {k.shape}")
    if k.ndim == 3 and (x.ndim != 4 or x.shape[0] != k.shape[0]):
        raise ValueError(
            f"per-image kernels {k.shape} need a batch x of shape (N, H, W, C) with the same N, "
            f"got x of shape {x.shape}"
        )
    kh, kw = k.shape[-2:]
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel must be non-empty, got shape {k.shape}")
    h, w = _spatial(x)
    if min(h, w) < 1:
        raise ValueError(f"image must be non-empty, got shape {x.shape}")
    if mode == "valid" and (kh > h or kw > w):
        raise ValueError(
            f"kernel ({kh}, {kw}) is larger than the image ({h}, {w}) in 'valid' mode, which would "
            "give an empty output; use a same-size mode or a smaller kernel"
        )


def _spatial(x) -> tuple[int, int]:
    return (x.shape[0], x.shape[1]) if x.ndim in (2, 3) else (x.shape[1], x.shape[2])


def _to_nhwc(x: jnp.ndarray) -> jnp.ndarray:
    if x.ndim == 2:
        return x[None, :, :, None]
    if x.ndim == 3:
        return x[None]
    return x


def _from_nhwc(y4: jnp.ndarray, ndim: int) -> jnp.ndarray:
    if ndim == 2:
        return y4[0, :, :, 0]
    if ndim == 3:
        return y4[0]
    return y4


def _same_pad(kh: int, kw: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(before, after) padding that puts the kernel centre (kh//2, kw//2) on the output pixel."""
    return (kh - 1 - kh // 2, kh // 2), (kw - 1 - kw // 2, kw // 2)


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer >= n (a fast FFT length)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _auto_method(h: int, w: int, kh: int, kw: int) -> str:
    """The method "auto" picks for an (h, w) image (before padding) and a (kh, kw) kernel.

    Measured on this project's 2-core x86 CPU (experiments/bench_blur.py,
    mode "same", one grayscale image, images 64..1024 x kernels 1..75): XLA's
    CPU convolution of a single-channel image is slow, and the FFT path was
    faster for every kernel of 3x3 and up at every image size, by 2x (3x3 at
    64..1024) to 10x (11x11) and 100x-1000x (51x51, 75x75); direct won only
    for 1x1 kernels (a scaling, e.g. 0.46 ms vs 31 ms at 1024x1024). Hence:
    "direct" for kernels of at most `_AUTO_MAX_DIRECT_TAPS` = 1 tap, "fft"
    otherwise, independently of the image size. GPUs were not measured;
    re-run the benchmark there and pass `method` explicitly if it differs.
    """
    del h, w
    return "direct" if kh * kw <= _AUTO_MAX_DIRECT_TAPS else "fft"


def _conv_valid_direct(xp: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """'valid' true convolution of xp (N, Hp, Wp, C) with one kernel (kh, kw)."""
    n, hp, wp, c = xp.shape
    lhs = jnp.moveaxis(xp, 3, 1).reshape(n * c, hp, wp, 1)
    rhs = k[::-1, ::-1, None, None]  # conv_general_dilated correlates: flip for convolution
    out = lax.conv_general_dilated(
        lhs, rhs, window_strides=(1, 1), padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    ho, wo = out.shape[1:3]
    return jnp.moveaxis(out.reshape(n, c, ho, wo), 1, 3)


def _conv_valid_fft(xp: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """'valid' true convolution of xp (N, Hp, Wp, C) with one kernel (kh, kw), via rfft2.

    A circular convolution over a length L >= Hp has no wrap-around on the
    outputs kh-1 .. Hp-1, which are exactly the 'valid' ones.
    """
    hp, wp = xp.shape[1:3]
    kh, kw = k.shape
    s = (_fast_len(hp), _fast_len(wp))
    spec = jnp.fft.rfft2(xp, s=s, axes=(1, 2)) * jnp.fft.rfft2(k, s=s)[None, :, :, None]
    return jnp.fft.irfft2(spec, s=s, axes=(1, 2))[:, kh - 1 : hp, kw - 1 : wp, :]


def _conv_circular_otf(x4: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """Circular true convolution of x4 (N, H, W, C) with one kernel no larger than the image."""
    h, w = x4.shape[1:3]
    spec = jnp.fft.rfft2(x4, axes=(1, 2)) * kernel_to_otf(k, (h, w))[None, :, :, None]
    return jnp.fft.irfft2(spec, s=(h, w), axes=(1, 2))


def _blur_nhwc(x4: jnp.ndarray, k: jnp.ndarray, mode: str, method: str) -> jnp.ndarray:
    """Blur of x4 (N, H, W, C) with ONE kernel (kh, kw); method is "fft" or "direct"."""
    kh, kw = k.shape
    h, w = x4.shape[1:3]
    if method == "fft" and mode == "circular" and kh <= h and kw <= w:
        return _conv_circular_otf(x4, k)
    if mode != "valid":
        ph, pw = _same_pad(kh, kw)
        x4 = jnp.pad(x4, ((0, 0), ph, pw, (0, 0)), mode=_PAD_MODE[mode])
    conv = _conv_valid_fft if method == "fft" else _conv_valid_direct
    return conv(x4, k)


@functools.partial(jax.jit, static_argnames=("mode", "method"))
def blur(x, k, mode: str = "valid", *, method: str = "auto") -> jnp.ndarray:
    """True 2-D convolution of images with a blur kernel.

    Args:
      x: images (H, W), (H, W, C) or (N, H, W, C), floating, usually in [0, 1].
      k: one kernel (kh, kw) for all images and channels, or per-image kernels
        (N, kh, kw) (then x must be (N, H, W, C) with the same N).
      mode: "valid" (output (H - kh + 1, W - kw + 1)) or a same-size mode:
        "same" (zeros), "circular", "reflect" (numpy/PyTorch reflect =
        scipy.ndimage "mirror"), "replicate" (scipy.ndimage "nearest"). See
        the module docstring.
      method: "direct", "fft" or "auto" (FFT for every kernel larger than
        1x1: measured faster on CPU from 3x3 on, see `_auto_method`).

    Returns:
      float32 array with x's layout; spatial size (H, W), or the 'valid' size.

    Raises:
      ValueError: bad ndim, kernel/batch mismatch, unknown mode/method, or a
        kernel larger than the image in "valid" mode.
      TypeError: non-floating inputs.
    """
    x = jnp.asarray(x)
    k = jnp.asarray(k)
    _check_inputs(x, k, mode, method)
    ndim = x.ndim
    x4 = _to_nhwc(x).astype(jnp.float32)
    k = k.astype(jnp.float32)
    if method == "auto":
        method = _auto_method(*x4.shape[1:3], *k.shape[-2:])
    if k.ndim == 2:
        y4 = _blur_nhwc(x4, k, mode, method)
    else:
        y4 = jax.vmap(lambda xi, ki: _blur_nhwc(xi[None], ki, mode, method)[0])(x4, k)
    return _from_nhwc(y4, ndim)


@functools.partial(jax.jit, static_argnames=("mode", "method"))
def correlate(x, k, mode: str = "valid", *, method: str = "auto") -> jnp.ndarray:
    """2-D correlation: `blur` with the kernel rotated 180 degrees.

    out[i, j] = sum_{a, b} k[a, b] * x[i + a - (kh - 1 - kh // 2), j + b - (kw - 1 - kw // 2)].
    In "valid" mode this equals `scipy.signal.correlate2d(x, k, "valid")`; it is
    the forward model of SelfDeblur's code and of the Levin et al. data. For
    same-size modes and odd kernels it equals `scipy.ndimage.correlate`; for
    even kernel sizes the output is shifted by one pixel relative to
    scipy.ndimage.correlate (the flipped kernel's centre is used). Arguments
    and shapes as in `blur`.
    """
    k = jnp.asarray(k)
    return blur(x, k[..., ::-1, ::-1], mode, method=method)


@functools.partial(jax.jit, static_argnames=("x_shape", "mode", "method"))
def blur_adjoint(y, k, x_shape, mode: str = "valid", *, method: str = "auto") -> jnp.ndarray:
    """The adjoint A^T of the linear map A: x -> blur(x, k, mode), applied to y.

    Satisfies <blur(x, k, mode), y> = <x, blur_adjoint(y, k, x.shape, mode)>.
    Computed by `jax.linear_transpose` of `blur`, so it is exact for every mode
    (for "valid" it is a 'full' correlation; for padded modes the padding's
    transpose folds the border back in).

    Args:
      y: array of the shape `blur` returns for an input of shape `x_shape`.
      k: kernel (kh, kw) or per-image kernels (N, kh, kw), as in `blur`.
      x_shape: shape of the input space, (H, W), (H, W, C) or (N, H, W, C).
      mode, method: as in `blur`.

    Returns:
      float32 array of shape `x_shape`.
    """
    x_shape = tuple(int(d) for d in x_shape)
    y = jnp.asarray(y)
    k = jnp.asarray(k)
    _check_floating("y", y)
    primal = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    forward = functools.partial(blur, k=k, mode=mode, method=method)
    expected = jax.eval_shape(forward, primal).shape
    if y.shape != expected:
        raise ValueError(f"y has shape {y.shape}, but blur of an x of shape {x_shape} gives {expected}")
    (xt,) = jax.linear_transpose(forward, primal)(y.astype(jnp.float32))
    return xt


@functools.partial(jax.jit, static_argnames=("shape",))
def kernel_to_otf(k, shape) -> jnp.ndarray:
    """Optical transfer function (psf2otf) of a kernel, as an rfft2 half-spectrum.

    The kernel is zero-padded to `shape` and circularly shifted so that its
    centre (kh//2, kw//2) sits at (0, 0); the result is its `jnp.fft.rfft2`,
    shape (..., H, W // 2 + 1), complex64. For an (H, W) image x,

        jnp.fft.irfft2(jnp.fft.rfft2(x) * kernel_to_otf(k, x.shape), s=x.shape)
            == blur(x, k, "circular")

    (for (H, W, C) images use rfft2/irfft2 over axes (0, 1) and otf[..., None]).

    Args:
      k: kernel (kh, kw), or kernels (..., kh, kw) with leading batch dims.
      shape: (H, W) with H >= kh and W >= kw.
    """
    k = jnp.asarray(k)
    _check_floating("k", k)
    if k.ndim < 2:
        raise ValueError(f"k must have shape (..., kh, kw), got {k.shape}")
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    h, w = (int(s) for s in shape)
    kh, kw = k.shape[-2:]
    if kh > h or kw > w:
        raise ValueError(f"kernel ({kh}, {kw}) does not fit in the OTF shape ({h}, {w})")
    kp = jnp.pad(k.astype(jnp.float32), [(0, 0)] * (k.ndim - 2) + [(0, h - kh), (0, w - kw)])
    kp = jnp.roll(kp, (-(kh // 2), -(kw // 2)), axis=(-2, -1))
    return jnp.fft.rfft2(kp)


# Elements of one row block of gathered patches (rows * W * kh * kw * channels)
# that the automatic `rows_per_chunk` aims for: 2**25 float32 = 128 MiB.
_SV_BLOCK_ELEMENTS = 2**25


def _sv_blur_hwc(x: jnp.ndarray, kmap: jnp.ndarray, rows: int) -> jnp.ndarray:
    """Spatially varying blur of x (H, W, C) with kmap (H, W, kh, kw), in row blocks of `rows`."""
    h, w, _ = x.shape
    kh, kw = kmap.shape[2:]
    ph, pw = _same_pad(kh, kw)
    xp = jnp.pad(x, (ph, pw, (0, 0)), mode="edge")
    # out[i, j] = sum_ab kmap[i, j, a, b] * xp[i + kh - 1 - a, j + kw - 1 - b]
    row_taps = jnp.arange(rows)[:, None] + (kh - 1 - jnp.arange(kh))[None, :]  # (rows, kh)
    col_taps = jnp.arange(w)[:, None] + (kw - 1 - jnp.arange(kw))[None, :]  # (W, kw)
    n_blocks = -(-h // rows)
    # The last block is moved up to end at row H (it may overlap the previous one).
    starts = jnp.minimum(jnp.arange(n_blocks) * rows, h - rows)

    @jax.checkpoint  # under grad, recompute the patches instead of storing all of them
    def one_block(start):
        xb = lax.dynamic_slice_in_dim(xp, start, rows + kh - 1, axis=0)
        kb = lax.dynamic_slice_in_dim(kmap, start, rows, axis=0)
        patches = xb[row_taps[:, None, :, None], col_taps[None, :, None, :]]  # (rows, W, kh, kw, C)
        return jnp.einsum("rwab,rwabc->rwc", kb, patches)

    blocks = lax.map(one_block, starts)  # (n_blocks, rows, W, C)
    overlap = n_blocks * rows - h
    head = blocks[:-1].reshape((n_blocks - 1) * rows, w, x.shape[2])
    return jnp.concatenate([head, blocks[-1, overlap:]], axis=0)


@functools.partial(jax.jit, static_argnames=("rows_per_chunk",))
def blur_spatially_varying(x, kmap, *, rows_per_chunk: int | None = None) -> jnp.ndarray:
    """Blur with a different kernel at every pixel (UFPNet's reblur model).

    Per pixel a true convolution with replicate (edge) padding:

        out[i, j] = sum_{a, b} kmap[i, j, a, b] * xpad[i + kh//2 - a, j + kw//2 - b]

    where xpad extends x with its edge pixels; a kmap equal to k everywhere gives
    exactly `blur(x, k, "replicate")`.

    Args:
      x: images (H, W), (H, W, C) or (N, H, W, C), floating.
      kmap: per-pixel kernels (H, W, kh, kw), shared by all images and channels,
        or per-image maps (N, H, W, kh, kw) for an x of shape (N, H, W, C).
      rows_per_chunk: output rows computed at once (a `lax.map` over row blocks
        bounds the gathered patches to rows * W * kh * kw * C floats per image,
        also under `jax.grad`, which recomputes them per block). None picks the
        largest count keeping a block (all N images) within 2**25 elements
        (128 MiB), e.g. 30 rows for one 1024x1024x3 image with 19x19 kernels;
        H gives one unchunked block.

    Returns:
      float32 array of x's shape.
    """
    x = jnp.asarray(x)
    kmap = jnp.asarray(kmap)
    _check_floating("x", x)
    _check_floating("kmap", kmap)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have shape (H, W), (H, W, C) or (N, H, W, C), got {x.shape}")
    if kmap.ndim not in (4, 5):
        raise ValueError(f"kmap must have shape (H, W, kh, kw) or (N, H, W, kh, kw), got {kmap.shape}")
    if kmap.ndim == 5 and (x.ndim != 4 or x.shape[0] != kmap.shape[0]):
        raise ValueError(
            f"per-image kernel maps {kmap.shape} need x of shape (N, H, W, C) with the same N, got {x.shape}"
        )
    h, w = _spatial(x)
    if kmap.shape[-4:-2] != (h, w):
        raise ValueError(f"kmap {kmap.shape} must have the image's spatial size ({h}, {w}) before (kh, kw)")
    kh, kw = kmap.shape[-2:]
    if kh < 1 or kw < 1:
        raise ValueError(f"kernels must be non-empty, got kmap of shape {kmap.shape}")
    ndim = x.ndim
    x4 = _to_nhwc(x).astype(jnp.float32)
    kmap = kmap.astype(jnp.float32)
    n, _, _, c = x4.shape
    if rows_per_chunk is None:
        rows_per_chunk = max(1, _SV_BLOCK_ELEMENTS // (n * w * kh * kw * c))
    if int(rows_per_chunk) < 1:
        raise ValueError(f"rows_per_chunk must be a positive integer, got {rows_per_chunk}")
    rows = min(int(rows_per_chunk), h)
    if kmap.ndim == 4:
        # One map for all images: fold the batch into the channels.
        xc = jnp.moveaxis(x4, 0, 2).reshape(h, w, n * c)
        y4 = jnp.moveaxis(_sv_blur_hwc(xc, kmap, rows).reshape(h, w, n, c), 2, 0)
    else:
        y4 = jax.vmap(lambda xi, ki: _sv_blur_hwc(xi, ki, rows))(x4, kmap)
    return _from_nhwc(y4, ndim)


__all__ = [
    "MODES",
    "METHODS",
    "blur",
    "correlate",
    "blur_adjoint",
    "kernel_to_otf",
    "blur_spatially_varying",
]
