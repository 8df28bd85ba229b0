"""A trained region classifier as jitted functions, and `select_region`: the best window of an image.

`RegionScorer` (what `make_inference` and `jaxdeblur.models.load("region-cpu")`
return) scores windows; `select_region(image, size, stride=...)` cuts EVERY
window of `size` at `stride` on the device and scores them in one compiled
call (`lax.map` over chunks of `chunk` windows bounds the memory), then
returns the best box and the score map.

Window sizes: the network ends with a mean over positions, so it scores any
window at least `min_window` px; it was trained on `config.patch` px windows
(128 for the cpu preset), the size where its scores mean what its held-out
metrics say. Windows that are flat (no neighbouring pixels differing by more
than 1/255: the MAP estimator refuses them) score 0.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdeblur.estimate import MIN_EDGE_CONTRAST
from jaxdeblur.models.region.config import RegionConfig
from jaxdeblur.nets.region_cnn import RegionCNN

CHUNK = 64


@dataclasses.dataclass(frozen=True)
class RegionChoice:
    """The outcome of `select_region`.

    box: (x, y, w, h) of the best window (x, y: its left column and top row).
    score: its probability of being a good region.
    scores: (rows, cols) probabilities of every window; scores[i, j] is the
      window at (y, x) = (ys[i], xs[j]).
    ys, xs: the windows' top rows and left columns.
    """

    box: tuple[int, int, int, int]
    score: float
    scores: np.ndarray
    ys: np.ndarray
    xs: np.ndarray


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """0, stride, 2 stride, ... and the last position length - window (so the far edge is covered)."""
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return np.asarray(starts, np.int32)


class RegionScorer:
    """A trained `RegionCNN` in evaluation mode: windows -> probabilities of being good regions.

    Calling it: ``scorer(windows)`` with windows (N, H, W) float in [0, 1] -> (N,) probabilities.
    `select_region` scores all windows of an image (see the module docstring).
    """

    def __init__(self, model: RegionCNN, config: RegionConfig, *, chunk: int = CHUNK):
        model.eval()
        self.config = config
        self.chunk = int(chunk)
        self.min_window = 8  # two stride-2 convs before the stages
        graphdef, state = nnx.split(model)
        self._state = state

        def logits(state, windows):
            return nnx.merge(graphdef, state)(windows)

        self._logits = logits
        self._probabilities = jax.jit(lambda state, w: jax.nn.sigmoid(self._chunked(state, w)))
        self._map = jax.jit(self._score_map, static_argnames=("size",))

    def _chunked(self, state, windows):
        n = windows.shape[0]
        chunk = min(self.chunk, n)
        return jax.lax.map(lambda w: self._logits(state, w[None])[0], windows, batch_size=chunk)

    def _score_map(self, state, image, ys, xs, *, size):
        h, w = size
        grid_y, grid_x = jnp.meshgrid(ys, xs, indexing="ij")
        starts = jnp.stack([grid_y.ravel(), grid_x.ravel()], axis=1)

        def one(start):
            window = jax.lax.dynamic_slice(image, (start[0], start[1]), (h, w))
            contrast = jnp.maximum(jnp.max(jnp.abs(jnp.diff(window, axis=0))),
                                   jnp.max(jnp.abs(jnp.diff(window, axis=1))))
            p = jax.nn.sigmoid(self._logits(state, window[None])[0])
            return jnp.where(contrast < MIN_EDGE_CONTRAST, 0.0, p)

        return jax.lax.map(one, starts, batch_size=min(self.chunk, starts.shape[0])).reshape(grid_y.shape)

    def __call__(self, windows) -> np.ndarray:
        windows = np.asarray(windows, np.float32)
        if windows.ndim != 3:
            raise ValueError(f"windows must be (N, H, W) gray, got shape {windows.shape}")
        return np.asarray(self._probabilities(self._state, jnp.asarray(windows)))

    def score_map(self, image, size: tuple[int, int], stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores (rows, cols), ys, xs) of every (h, w) = `size` window of a gray image at `stride`."""
        ys = window_starts(image.shape[0], size[0], stride)
        xs = window_starts(image.shape[1], size[1], stride)
        scores = self._map(self._state, jnp.asarray(image, jnp.float32), jnp.asarray(ys), jnp.asarray(xs),
                           size=tuple(int(s) for s in size))
        return np.asarray(scores), ys, xs


def make_inference(model: RegionCNN, config: RegionConfig) -> RegionScorer:
    """The trained `model` as a `RegionScorer` (switches the module to evaluation mode)."""
    return RegionScorer(model, config)


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)):
        raise ValueError(f"size must be an int or an (h, w) pair of ints, got {size!r}")
    return int(size[0]), int(size[1])


def _gray(image) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[2] in (1, 3):
        from jaxdeblur.color import rgb_to_gray

        x = x[..., 0] if x.shape[2] == 1 else np.asarray(rgb_to_gray(x.astype(np.float32)))
    if x.ndim != 2:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {np.shape(image)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"image must be float in [0, 1], got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("image contains NaN or infinite values")
    return x.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_scorer(weights: str) -> RegionScorer:
    from jaxdeblur.models.weights import load

    return load(weights).fn


def select_region(image, size, *, stride: int | None = None, weights: str = "region-cpu",
                  scorer: RegionScorer | None = None, kernel_size=None) -> RegionChoice:
    """The window of `size` where the trained CNN expects the best kernel estimate (Yang, Wu & Sun).

    Args:
      image: (H, W) or (H, W, 3) float in [0, 1] (colour: scored on the luma).
      size: window side (int) or (h, w).
      stride: step between windows in pixels (default max(1, min(h, w) // 8));
        the last row / column of windows touches the image's far edge.
      weights: shipped weights to load (`jaxdeblur.models.load`), unless `scorer`.
      scorer: a `RegionScorer` to use instead (e.g. a freshly trained one).
      kernel_size: optional int or (kh, kw): the kernel to be estimated on the
        window, checked to fit in it.

    Returns:
      RegionChoice (box (x, y, w, h), its score, the score map and the window positions).

    Raises:
      ValueError (one line): a window larger than the image or smaller than
      the network's minimum, a kernel larger than the window, a flat image (no
      edges: no window to estimate a kernel from), a bad stride or shape.
    """
    gray = _gray(image)
    h, w = _size_pair(size)
    rows, cols = gray.shape
    if h > rows or w > cols:
        raise ValueError(f"window {h}x{w} (h x w) is larger than the image {rows}x{cols}")
    if kernel_size is not None:
        kh, kw = _size_pair(kernel_size)
        if kh > h or kw > w:
            raise ValueError(f"kernel size {kh}x{kw} is larger than the window {h}x{w}: choose a larger window")
    if stride is None:
        stride = max(1, min(h, w) // 8)
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    contrast = max(float(np.abs(np.diff(gray, axis=0)).max(initial=0.0)),
                   float(np.abs(np.diff(gray, axis=1)).max(initial=0.0)))
    if contrast < MIN_EDGE_CONTRAST:
        raise ValueError("the image is flat (no neighbouring pixels differ by more than 1/255): no window has "
                         "edges to estimate a kernel from")
    scorer = _load_scorer(weights) if scorer is None else scorer
    if min(h, w) < scorer.min_window:
        raise ValueError(f"window {h}x{w} is smaller than the network's minimum {scorer.min_window} px")
    scores, ys, xs = scorer.score_map(gray, (h, w), int(stride))
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return RegionChoice(box=(int(xs[j]), int(ys[i]), w, h), score=float(scores[i, j]), scores=scores, ys=ys, xs=xs)


def cnn_window(image, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The region selector "cnn" (`jaxdeblur.regions`): `select_region(image, size).box` with the shipped weights."""
    return select_region(image, size).box


__all__ = ["RegionChoice", "RegionScorer", "cnn_window", "make_inference", "select_region", "window_starts"]
