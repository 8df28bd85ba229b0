"""UFPNet as a trained model: presets, the stages' best metrics, the losses' re-blur helpers, the checks on stage
inputs.

A stage-1 step of the trainer (only the code net's parameters move; the flow and the deblurring net are frozen),
its evaluation, export and load: tests/models/test_contract.py (every model, UFPNet's tiny_kernel preset); stage 2
is in test_stages.py (slow).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.forward import blur, blur_spatially_varying
from jaxdeblur.models import ufpnet
from jaxdeblur.models.ufpnet.task import reblur_at


def test_stage_one_trains_the_code_net_only_and_ranks_by_the_kernel_estimation_loss():
    task = ufpnet.make_task(ufpnet.TINY_KERNEL)
    assert task.best_metric == ("reblur_l1", "min")
    model = nnx.eval_shape(lambda: task.init_model(nnx.Rngs(0)))
    trained = {path[0] for path, _ in nnx.to_flat_state(nnx.state(model, task.trainable()))}
    assert trained == {"code_net"} == set(ufpnet.task.TRAINED["kernel"])


def test_stages_check_their_starting_weights():
    with pytest.raises(ValueError, match="init_weights"):
        ufpnet.make_task(ufpnet.TINY)
    with pytest.raises(ValueError, match="expected 'ufpnet'"):
        ufpnet.make_task(dataclasses.replace(ufpnet.TINY, init_weights="kernel_prior-cpu"))
    with pytest.raises(FileNotFoundError):
        ufpnet.make_task(dataclasses.replace(ufpnet.TINY, init_weights="/nonexistent/ufpnet/tiny_kernel"))


def test_presets():
    paper = ufpnet.PAPER
    assert (paper.width, paper.enc_blocks, paper.middle_blocks, paper.dec_blocks) == (64, (1, 1, 1, 28), 1,
                                                                                      (1, 1, 1, 1))
    assert (paper.conditioned_levels, paper.code_widths, paper.code_middle_width, paper.code_middle_convs) == (
        3, (64, 128), 256, 5)
    assert paper.prior.kernel_size == paper.data.degrade.kernel_size == 19 and paper.prior_weights == "kernel_prior-cpu"
    for name, config in ufpnet.PRESETS.items():
        assert config.stage == ("kernel" if name.endswith("_kernel") else "deblur")
    assert ufpnet.CPU.data.degrade.spatially_varying > 0 and ufpnet.CPU_KERNEL.ke_pixels > 0
    with pytest.raises(ValueError, match="stage"):
        dataclasses.replace(paper, stage="everything")
    with pytest.raises(ValueError, match="prior.kernel_size"):
        dataclasses.replace(ufpnet.TINY, data=dataclasses.replace(
            ufpnet.TINY.data, degrade=dataclasses.replace(ufpnet.TINY.data.degrade, kernel_size=7)))


def test_reblur_at_pixels_equals_the_spatially_varying_blur_there():
    key_x, key_k = jax.random.split(jax.random.key(0))
    x = jax.random.uniform(key_x, (2, 12, 11, 1))
    field = jax.nn.softmax(jax.random.normal(key_k, (2, 12, 11, 25)), axis=-1).reshape(2, 12, 11, 5, 5)
    rows, cols = jnp.array([[2, 9, 5], [3, 2, 6]]), jnp.array([[2, 8, 4], [7, 3, 5]])
    images = jnp.arange(2)[:, None]
    np.testing.assert_allclose(reblur_at(x, field[images, rows, cols], rows, cols),
                               blur_spatially_varying(x, field)[images, rows, cols], atol=1e-6)


def test_spatially_varying_reblur_of_a_constant_field_equals_blur():
    x = jax.random.uniform(jax.random.key(1), (1, 10, 9, 1))
    k = jax.nn.softmax(jax.random.normal(jax.random.key(2), (25,))).reshape(5, 5)
    field = jnp.broadcast_to(k, (1, 10, 9, 5, 5))
    np.testing.assert_allclose(blur_spatially_varying(x, field), blur(x, k, "replicate"), atol=1e-6)
