"""The base classes of the blind methods: what the API reads of each, what a DIP method gives the engine.

`BlindMethod` declares what `jaxdeblur.api` reads of every method registered
in `jaxdeblur.methods.METHODS`, DIP or not (name, presets, colour modes,
preset "auto", kernel size "auto", warm starts, checkpoints): class attributes
with defaults, so the API reads them directly.

`DIPMethod` is the base of every DIP method (as scico's optimisers: the base
owns the run, a subclass writes the step). A subclass writes the step's
parts: `networks`, `inputs`, `loss`, `estimate`, `optimizer`; the base owns
`run` (one `engine.run_batch` of `cfg.iterations`) and gives the optional
hooks their defaults (`init_method_state`, `shared`, `latent_shape`,
`image_offset`, `fit_networks`). The engine (`jaxdeblur.engine.runner`)
owns everything else: run state, optimiser state, jitted step, scanned
chunks, batching, sharding, checkpoints, progress and history. A method is a
stateless object (equal to every other instance of its class, so compiled
programs are cached per class); its numbers live in a frozen config
dataclass (`jaxdeblur.config`).

Adding a DIP method: one module with a config dataclass, presets ("paper",
"fast", "tiny") and a `DIPMethod` subclass, plus one line in
`jaxdeblur.methods.METHODS` (tests/engine/toy_method.py is the smallest).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import jax
import optax
from flax import nnx

from jaxdeblur.engine.runner import BatchOutcome, EngineOptions, latent_shape, run_batch

if TYPE_CHECKING:
    from jaxdeblur.engine.multiscale import WarmStart

PyTree = Any


class BlindMethod:
    """What the API reads of a blind method (a DIP method or the classical MAP estimator).

    name: the registry name (`deblur(method=...)`, `--method`).
    presets: {preset name: frozen config}; DIP methods have "paper", "fast" and "tiny".
    color_modes: the `color=` modes the method runs ("y": the luma, chroma kept; "rgb": every channel).
    auto_preset / auto_reason: the preset "auto" picks and why; None: "fast" on a CPU, "paper" elsewhere.
    auto_kernel_size: whether kernel_size="auto" is accepted (the support chosen per image).
    inits: the starts a run can take besides its own (`deblur(init=...)`, e.g. "map").
    checkpoints: whether runs keep checkpoints (and `--resume` applies).
    """

    name: ClassVar[str]
    presets: ClassVar[Mapping[str, Any]]
    color_modes: ClassVar[tuple[str, ...]] = ("y", "rgb")
    auto_preset: ClassVar[str | None] = None
    auto_reason: ClassVar[str | None] = None
    auto_kernel_size: ClassVar[bool] = False
    inits: ClassVar[tuple[str, ...]] = ()
    checkpoints: ClassVar[bool] = True

    def __hash__(self):
        return hash(type(self))

    def __eq__(self, other):
        return type(self) is type(other)


class DIPMethod(BlindMethod, abc.ABC):
    """A deep-image-prior method run by the engine (see the module docstring; `methods/selfdeblur.py`).

    Subclasses write `networks`, `inputs`, `loss`, `estimate` and `optimizer` (abstract: a subclass missing
    one cannot be instantiated); the other methods are
    optional hooks with working defaults, and `run` drives the engine (override it for several stages or
    work before the first step, e.g. Kotera's scales, the kernel-space warm-up).
    """

    # ------------------------------------------------------------ the step's parts (required)
    @abc.abstractmethod
    def networks(self, cfg, latent_shape: tuple[int, int, int], kernel_size: tuple[int, int],
                 rngs: nnx.Rngs) -> dict[str, nnx.Module]:
        """Builds the method's Flax modules for one run, by name."""

    @abc.abstractmethod
    def inputs(self, cfg, key: jax.Array, latent_shape: tuple[int, int, int]) -> PyTree:
        """The fixed random network inputs of one run (e.g. DIP noise codes)."""

    @abc.abstractmethod
    def loss(self, cfg, nets, params: PyTree, net_state: PyTree, inputs: PyTree, method_state: PyTree,
             y: jax.Array, step: jax.Array, key: jax.Array) -> tuple[jax.Array, tuple[dict, PyTree, PyTree]]:
        """Scalar loss and (named loss terms, new network state, new method state) of one step."""

    @abc.abstractmethod
    def estimate(self, cfg, nets, params: PyTree, net_state: PyTree, inputs: PyTree,
                 method_state: PyTree) -> tuple[jax.Array, jax.Array, dict]:
        """(latent image (`latent_shape`), kernel (kh, kw), extra outputs)."""

    @abc.abstractmethod
    def optimizer(self, cfg) -> optax.GradientTransformation:
        """The optax optimiser over the params dict {network name: params}."""

    # ------------------------------------------------------------ optional hooks (defaults)
    def init_method_state(self, cfg, latent_shape: tuple[int, int, int], kernel_size: tuple[int, int]) -> PyTree:
        """Extra per-run state carried through the steps (e.g. a ring buffer). Default: none ({})."""
        return {}

    def shared(self, cfg) -> PyTree:
        """Run-shared constants, e.g. a frozen pretrained network's parameters: ONE copy, replicated on every
        device and passed to every step of every run (never a per-run leaf of the state, never
        differentiated); `loss` and `estimate` see them as `nets.shared`. Default: none ({})."""
        return {}

    def latent_shape(self, cfg, image_shape: tuple[int, int, int],
                     kernel_size: tuple[int, int]) -> tuple[int, int, int]:
        """The latent the image generator makes. Default (H + kh - 1, W + kw - 1, C), the 'valid' model."""
        return latent_shape(tuple(image_shape), tuple(kernel_size))

    def image_offset(self, cfg, kernel_size: tuple[int, int]) -> tuple[int, int]:
        """(row, column) of the image's top-left pixel in the latent (crop latent[oy:oy + H, ox:ox + W]).
        Default ((kh - 1) // 2, (kw - 1) // 2), the 'valid' model's observed region."""
        return ((kernel_size[0] - 1) // 2, (kernel_size[1] - 1) // 2)

    def fit_networks(self, cfg) -> dict[str, str]:
        """The networks a warm start fits (`engine.multiscale.fit_roles`): {"image": network fitted to the
        latent, "kernel": network fitted to the kernel}. Default: the double-DIP names."""
        return {"image": "image", "kernel": "kernel"}

    # ------------------------------------------------------------ the run
    def run(self, cfg, ys, kernel_size: tuple[int, int], keys: jax.Array, options: EngineOptions = EngineOptions(),
            init: WarmStart | None = None) -> BatchOutcome:
        """Runs the method on a batch of blurred images ys (R, H, W, C), one PRNG key per run: one
        `engine.run_batch` of `cfg.iterations` steps from fresh networks.

        init: a WarmStart (`engine.multiscale`) for the methods whose `inits` name one (they override
        `run`); ValueError here.
        """
        if init is not None:
            raise ValueError(f"method {self.name!r} cannot start from a warm start (its inits: {list(self.inits)})")
        return run_batch(self, cfg, ys, kernel_size, keys, iterations=cfg.iterations, options=options)


__all__ = ["BlindMethod", "DIPMethod"]
