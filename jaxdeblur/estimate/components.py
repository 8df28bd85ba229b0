"""Kernel cleanup on device: relative threshold, 8-connected components, renormalisation.

Connected components are labelled by label propagation: every support tap
starts with its own label (flat index + 1) and repeatedly takes the maximum
label of its 3x3 neighbourhood (a max-pool), restricted to the support, until
nothing changes (`lax.while_loop`; at most the longest path inside a
component, a few dozen steps for blur kernels). Every tap of a component then
holds the component's largest index, and component masses are a
`segment_sum` over labels. Pure jnp on one (kh, kw) kernel; vmap for batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxdeblur.kernels import normalize


def label_components(support: jnp.ndarray) -> jnp.ndarray:
    """8-connected component labels of a boolean (kh, kw) mask: 0 off the mask, else the
    largest (flat index + 1) of the tap's component (int32, same shape)."""
    kh, kw = support.shape
    initial = jnp.where(support, jnp.arange(1, kh * kw + 1, dtype=jnp.int32).reshape(kh, kw), 0)

    def grow(labels):
        pooled = lax.reduce_window(labels, 0, lax.max, (3, 3), (1, 1), "SAME")
        return jnp.where(support, pooled, 0)

    def changed(state):
        labels, previous = state
        return jnp.any(labels != previous)

    labels, _ = lax.while_loop(changed, lambda state: (grow(state[0]), state[0]), (grow(initial), initial))
    return labels


def remove_small_components(k: jnp.ndarray, min_mass) -> jnp.ndarray:
    """Zero the 8-connected components of k's positive support whose mass is below
    `min_mass` times the kernel's total mass (Pan et al.: 0.1 of a unit-sum kernel)."""
    k = jnp.maximum(k, 0.0)
    labels = label_components(k > 0)
    mass = jax.ops.segment_sum(k.ravel(), labels.ravel(), num_segments=k.size + 1)
    tap_mass = mass[labels]
    return jnp.where(tap_mass >= min_mass * jnp.sum(k), k, 0.0)


def clean_kernel(k: jnp.ndarray, *, threshold, min_mass) -> jnp.ndarray:
    """Negative taps and taps below `threshold` x peak zeroed, small components removed, sum 1.

    A kernel with no positive tap becomes the centred delta (`kernels.normalize`).
    """
    k = jnp.maximum(k, 0.0)
    k = jnp.where(k >= threshold * jnp.max(k), k, 0.0)
    return normalize(remove_small_components(k, min_mass))


__all__ = ["label_components", "remove_small_components", "clean_kernel"]
