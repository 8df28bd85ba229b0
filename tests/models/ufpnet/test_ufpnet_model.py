"""UFPNet as a trained model: presets, losses, the two stages through the one trainer (frozen parts stay
untouched), export + load with its check metrics.

The stage runs (tiny presets, 2 steps each, scikit-image photos) are shared by the tests (module fixture).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur import models
from jaxdeblur.forward import blur, blur_spatially_varying
from jaxdeblur.models import ufpnet
from jaxdeblur.models.nafnet import check_pairs
from jaxdeblur.models.ufpnet.task import reblur_at
from jaxdeblur.train import export, train
from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for


def _part(model, name):
    return jax.device_get(nnx.state(getattr(model, name)))


def _assert_same(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _changed(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Stage 1 (kernel) then stage 2 (deblur, from stage 1's export): tasks, initial and final models, exports."""
    root = tmp_path_factory.mktemp("ufpnet")
    out = {}
    config = ufpnet.TINY_KERNEL
    for stage in ("kernel", "deblur"):
        task = ufpnet.make_task(config)
        program = program_for(task, data_mesh())
        initial = program.model(program.initial_state(config.train.seed))
        result = train(task, root / f"run_{stage}", progress=False)
        preset = "tiny_kernel" if stage == "kernel" else "tiny"
        metrics = dict(result.eval_metrics)
        if stage == "deblur":
            metrics.update(ufpnet.check_metrics(ufpnet.make_inference(result.model(), config), config))
        folder = export(task, result, root / "ckpt", preset=preset, data={"source": "skimage photos"},
                        metrics=metrics)
        out[stage] = dict(task=task, initial=initial, result=result, folder=folder, metrics=metrics)
        config = dataclasses.replace(ufpnet.TINY, init_weights=str(folder))
    return out


def test_stage_one_trains_only_the_code_net(stages):
    run = stages["kernel"]
    trained = run["result"].model()
    assert run["task"].best_metric == ("reblur_l1", "min")
    assert np.isfinite(run["result"].eval_metrics["reblur_l1"])
    _assert_same(_part(trained, "flow"), _part(run["initial"], "flow"))  # params and batch statistics
    _assert_same(_part(trained, "deblur"), _part(run["initial"], "deblur"))
    assert _changed(_part(trained, "code_net"), _part(run["initial"], "code_net"))


def test_stage_two_starts_from_stage_one_and_trains_only_the_deblurring_net(stages):
    first, second = stages["kernel"]["result"].model(), stages["deblur"]
    trained = second["result"].model()
    for part in ("flow", "code_net"):
        _assert_same(_part(second["initial"], part), _part(first, part))
        _assert_same(_part(trained, part), _part(first, part))
    assert _changed(_part(trained, "deblur"), _part(second["initial"], "deblur"))
    assert {"psnr", "psnr_input", "reblur_l1"} <= set(second["result"].eval_metrics)


def test_export_then_load_reproduces_the_check_metrics(stages):
    run = stages["deblur"]
    loaded = models.load("ufpnet-tiny", root=run["folder"].parent.parent)
    again = ufpnet.check_metrics(loaded, loaded.config)
    for name in ("check_psnr", "check_reblur_l1"):
        assert again[name] == pytest.approx(loaded.manifest["metrics"][name], abs=1e-4)
    result = loaded(check_pairs(loaded.config)["blurred"])  # the shape check_metrics compiled
    assert result.restored.shape == (2, 16, 16, 1) and result.kernels.shape == (2, 16, 16, 5, 5)
    assert result.sigma.shape == (2, 16, 16) and float(result.restored.min()) >= 0


def test_stage_two_needs_the_stage_one_weights(stages, tmp_path):
    with pytest.raises(ValueError, match="init_weights"):
        ufpnet.make_task(ufpnet.TINY)
    with pytest.raises(ValueError, match="expected 'ufpnet'"):
        ufpnet.make_task(dataclasses.replace(ufpnet.TINY, init_weights="kernel_prior-cpu"))
    other_widths = ufpnet.make_task(dataclasses.replace(ufpnet.TINY, code_widths=(4, 6),
                                                       init_weights=str(stages["kernel"]["folder"])))
    with pytest.raises(ValueError, match="does not fit"):
        nnx.eval_shape(lambda: other_widths.init_model(nnx.Rngs(0)))


def test_presets():
    paper = ufpnet.PAPER
    assert (paper.width, paper.enc_blocks, paper.middle_blocks, paper.dec_blocks) == (64, (1, 1, 1, 28), 1,
                                                                                      (1, 1, 1, 1))
    assert (paper.conditioned_levels, paper.code_widths, paper.code_middle_width, paper.code_middle_convs) == (
        3, (64, 128), 256, 5)
    assert paper.prior.kernel_size == paper.degrade.kernel_size == 19 and paper.stage == "deblur"
    for name, config in ufpnet.PRESETS.items():
        assert config.stage == ("kernel" if name.endswith("_kernel") else "deblur")
    assert ufpnet.CPU.degrade.spatially_varying > 0
    with pytest.raises(ValueError, match="stage"):
        dataclasses.replace(paper, stage="everything")
    with pytest.raises(ValueError, match="prior.kernel_size"):
        dataclasses.replace(ufpnet.TINY, degrade=dataclasses.replace(ufpnet.TINY.degrade, kernel_size=7))


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


def test_each_stage_trains_its_parts_and_never_the_flow(stages):
    """The trainable filters, on an abstract model of every stage (the joint stage starts from stage 2's export)."""
    config = dataclasses.replace(ufpnet.TINY, stage="joint", init_weights=str(stages["deblur"]["folder"]))
    for task in (stages["kernel"]["task"], stages["deblur"]["task"], ufpnet.make_task(config)):
        model = nnx.eval_shape(lambda: task.init_model(nnx.Rngs(0)))
        trained = {path[0] for path, _ in nnx.to_flat_state(nnx.state(model, task.trainable()))}
        assert trained == set(ufpnet.task.TRAINED[task.config.stage])
    assert task.best_metric == ("psnr", "max")
