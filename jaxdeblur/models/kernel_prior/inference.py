"""A trained flow prior as jitted functions: `KernelPrior` (what `make_inference` and `load` return)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.models.kernel_prior.config import KernelPriorConfig
from jaxdeblur.nets.flow import KernelFlow


class KernelPrior:
    """The flow's inference maps, jitted, with the running statistics (evaluation mode).

    Bad shapes raise the module's ValueError / TypeError while tracing.

    Calling it decodes: ``prior(z)`` == ``prior.decode(z)``, latent codes
    (..., kh * kw) -> kernels (..., kh, kw), non-negative, sum 1.

    Attributes:
      config: the model's config.
      kernel_size: (kh, kw).
      dim: kh * kw, the length of a latent code.
    """

    def __init__(self, model: KernelFlow, config: KernelPriorConfig):
        model.eval()
        self.config = config
        self.kernel_size, self.dim = model.kernel_size, model.dim
        graphdef, state = nnx.split(model)

        def method(name):
            return jax.jit(lambda state, *args: getattr(nnx.merge(graphdef, state), name)(*args))

        self._state = state
        self._encode, self._decode = method("encode"), method("decode")
        self._log_prob = jax.jit(lambda state, k, noise: nnx.merge(graphdef, state).log_prob(k, noise=noise))

    def log_prob(self, k, *, noise=None) -> jax.Array:
        """Log density (nats) of kernels (..., kh, kw) -> (...), dequantised by `noise` (default the centre 0.5;
        see `KernelFlow.log_prob`)."""
        return self._log_prob(self._state, jnp.asarray(k), None if noise is None else jnp.asarray(noise))

    def encode(self, k) -> jax.Array:
        """Kernels (..., kh, kw) -> latent codes (..., kh * kw)."""
        return self._encode(self._state, jnp.asarray(k))

    def decode(self, z) -> jax.Array:
        """Latent codes (..., kh * kw) -> kernels (..., kh, kw), non-negative, sum 1."""
        return self._decode(self._state, jnp.asarray(z))

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n kernels (n, kh, kw) from standard normal codes drawn with `key`."""
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        return self.decode(jax.random.normal(key, (int(n), self.dim), jnp.float32))

    def __call__(self, z) -> jax.Array:
        return self.decode(z)


def make_inference(model: KernelFlow, config: KernelPriorConfig) -> KernelPrior:
    """The trained `model` as a `KernelPrior` (switches the module to evaluation mode)."""
    return KernelPrior(model, config)
