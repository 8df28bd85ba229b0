"""UFPNet stage 2: it starts from a stage-1 folder and a step of the trainer trains only the deblurring net;
the trainable filters of every stage; export + load reproduce the check metrics.

The stage-1 folder is an untrained tiny_kernel model exported as is (test_ufpnet_model.py trains stage 1);
one tiny stage-2 step (the trainer's compiled step, scikit-image photos) is shared by the tests.
"""

import dataclasses

import pytest

# Stage 2 compiles the whole UFPNet's train step (about a minute on the 2-core CI machine): opt-in with
# --runslow (make test-all). Stage 1 (tests/models/ufpnet/test_ufpnet_model.py) and the shipped weights
# (test_shipped.py) run in the default suite.
pytestmark = pytest.mark.slow
from flax import nnx

from jaxdeblur import models
from jaxdeblur.models import ufpnet
from jaxdeblur.models.nafnet import check_pairs
from jaxdeblur.train import export
from tests.models.ufpnet.parts import assert_same, changed, one_step, part


@pytest.fixture(scope="module")
def stage_two(tmp_path_factory):
    root = tmp_path_factory.mktemp("ufpnet")
    kernel_task = ufpnet.make_task(ufpnet.TINY_KERNEL)
    first = kernel_task.init_model(nnx.Rngs(5))
    first_folder = export(kernel_task, first, root / "ckpt", preset="tiny_kernel", data={}, metrics={})
    config = dataclasses.replace(ufpnet.TINY, init_weights=str(first_folder))
    task = ufpnet.make_task(config)
    initial, state, trained = one_step(task)
    metrics = ufpnet.check_metrics(ufpnet.make_inference(trained, config), config)
    folder = export(task, state, root / "ckpt", preset="tiny", data={"source": "skimage photos"}, metrics=metrics)
    return dict(kernel_task=kernel_task, first=first, first_folder=first_folder, task=task, initial=initial,
                trained=trained, folder=folder)


def test_a_stage_two_step_starts_from_stage_one_and_trains_only_the_deblurring_net(stage_two):
    trained = stage_two["trained"]
    for name in ("flow", "code_net"):
        assert_same(part(stage_two["initial"], name), part(stage_two["first"], name))
        assert_same(part(trained, name), part(stage_two["first"], name))
    assert changed(part(trained, "deblur"), part(stage_two["initial"], "deblur"))
    assert stage_two["task"].best_metric == ("psnr", "max")


def test_each_stage_trains_its_parts_and_never_the_flow(stage_two):
    """The trainable filters, on abstract models (the joint stage starts from the stage-2 export)."""
    joint = ufpnet.make_task(dataclasses.replace(ufpnet.TINY, stage="joint", init_weights=str(stage_two["folder"])))
    for task in (stage_two["kernel_task"], stage_two["task"], joint):
        model = nnx.eval_shape(lambda: task.init_model(nnx.Rngs(0)))
        trained = {path[0] for path, _ in nnx.to_flat_state(nnx.state(model, task.trainable()))}
        assert trained == set(ufpnet.task.TRAINED[task.config.stage])
    other_widths = ufpnet.make_task(dataclasses.replace(ufpnet.TINY, code_widths=(4, 6),
                                                       init_weights=str(stage_two["first_folder"])))
    with pytest.raises(ValueError, match="does not fit"):
        nnx.eval_shape(lambda: other_widths.init_model(nnx.Rngs(0)))


def test_export_then_load_reproduces_the_check_metrics(stage_two):
    loaded = models.load("ufpnet-tiny", root=stage_two["folder"].parent.parent)
    again = ufpnet.check_metrics(loaded, loaded.config)
    for name in ("check_psnr", "check_reblur_l1"):
        assert again[name] == pytest.approx(loaded.manifest["metrics"][name], abs=1e-4)
    result = loaded(check_pairs(loaded.config)["blurred"])  # the shape check_metrics compiled
    assert result.restored.shape == (2, 16, 16, 1) and result.kernels.shape == (2, 16, 16, 5, 5)
    assert result.sigma.shape == (2, 16, 16) and float(result.restored.min()) >= 0
