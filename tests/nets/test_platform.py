"""The nets' CPU fast paths follow the platform they are traced for: an argument, the program's mesh, or the default.

Traced only (jax.make_jaxpr): nothing compiles, so the file takes well under a second.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from jaxdeblur.engine.batching import sharded_over_runs
from jaxdeblur.nets import apply, split_module, torch_batch_norm, torch_conv
from jaxdeblur.nets import platform as nets_platform
from jaxdeblur.nets.conv import conv_general_dilated
from jaxdeblur.nets.fused import batch_norm_act, reflect_pad, upsample2x_bilinear
from jaxdeblur.nets.nafnet_ops import depthwise3x3

X = jnp.ones((1, 8, 8, 2))
W = jnp.ones((3, 3, 2, 3))
SPEC = jax.lax.conv_dimension_numbers(X.shape, W.shape, ("NHWC", "HWIO", "NHWC"))


def _fast(fn, *args) -> bool:
    """Whether tracing fn took a hand-written path (a custom_vjp: the CPU fast paths are custom gradients)."""
    return "custom_vjp" in str(jax.make_jaxpr(fn)(*args))


def _conv(platform=None):
    return lambda x, w: conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=SPEC, platform=platform)


def test_the_default_is_the_process_backend_and_an_argument_or_a_scope_overrides_it():
    assert nets_platform.resolve(None) == jax.default_backend() == "cpu"
    assert _fast(_conv(), X, W) and _fast(_conv("cpu"), X, W)
    assert not _fast(_conv("gpu"), X, W)
    with nets_platform.use("tpu"):
        assert nets_platform.resolve(None) == "tpu" and not _fast(_conv(), X, W)
        assert _fast(_conv("cpu"), X, W)  # an explicit argument wins over the scope
    assert nets_platform.resolve(None) == "cpu"  # the scope ends with its block
    np.testing.assert_array_equal(jax.jit(_conv("gpu"))(X, W), jax.jit(_conv("cpu"))(X, W))


def test_every_fast_path_follows_the_platform():
    ops = {"pad": lambda x, p: reflect_pad(x, 1, platform=p),
           "upsample": lambda x, p: upsample2x_bilinear(x, platform=p),
           "batch_norm": lambda x, p: batch_norm_act(torch_batch_norm(2, rngs=nnx.Rngs(0)), x, negative_slope=0.2,
                                                     platform=p)}
    for name, op in ops.items():
        assert _fast(lambda x, op=op: op(x, "cpu"), X), name
        assert not _fast(lambda x, op=op: op(x, "gpu"), X), name
    kernel, bias = jnp.ones((3, 3, 1, 2)), jnp.zeros((2,))
    shifted = str(jax.make_jaxpr(lambda x: depthwise3x3(x, kernel, bias, platform="cpu"))(X))
    grouped = str(jax.make_jaxpr(lambda x: depthwise3x3(x, kernel, bias, platform="gpu"))(X))
    assert "conv_general_dilated" not in shifted and "conv_general_dilated" in grouped


def test_apply_passes_its_platform_down_and_the_engine_traces_for_its_mesh():
    # an abstract module (nothing initialised: random init compiles slowly on CPU), its params an argument
    graphdef, params, state = split_module(nnx.eval_shape(lambda: torch_conv(2, 3, 3, rngs=nnx.Rngs(0))))

    def run(platform=None):  # a new function per trace: JAX caches traces by function
        return lambda p, x: apply(graphdef, p, state, x, platform=platform)[0]

    assert _fast(run(), params, X) and not _fast(run("gpu"), params, X)
    mesh = Mesh(np.array(jax.devices("cpu")[:1]), ("runs",))
    with nets_platform.use("gpu"):  # whatever the caller's scope, a program is traced for its mesh's devices
        assert not _fast(run(), params, X)
        assert _fast(sharded_over_runs(run(), mesh), params, X)
    assert not _fast(nets_platform.traced_for(run(), "gpu"), params, X)
    assert nets_platform.mesh_platform(mesh) == "cpu"
