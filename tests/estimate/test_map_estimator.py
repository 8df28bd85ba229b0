"""MAP kernel estimation: recovers a known kernel, its objective falls, batches equal single runs, bad input fails.

One image size (64 x 64), one kernel size (9) and the "tiny" preset for every
compiled call: two compilations in all (a batch of 2 and single images).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur import kernels
from jaxdeblur.estimate import MapConfig, edge_contrast, estimate_kernels, map_deblur
from jaxdeblur.estimate.components import clean_kernel, label_components
from jaxdeblur.estimate.map_estimator import pyramid
from jaxdeblur.forward import blur
from jaxdeblur.metrics import kernel_similarity
from tests.estimate.scenes import shapes_scene

SIZE, KERNEL = 64, 9


def shapes(seed: int) -> np.ndarray:
    """A piecewise-constant (SIZE, SIZE) image of random rectangles and discs: strong edges in every direction."""
    return shapes_scene(seed, SIZE, 8)


@pytest.fixture(scope="module")
def problem():
    truth = kernels.motion(jax.random.key(4), KERNEL)  # asymmetric: 180-degree self-similarity 0.77
    blurred = np.stack([np.asarray(blur(shapes(seed), truth, "reflect")) for seed in (0, 1)])
    batch = estimate_kernels(blurred, KERNEL, preset="tiny")
    return truth, blurred, batch


def test_recovers_a_known_kernel_in_the_blur_convention(problem):
    truth, _, batch = problem
    assert batch.kernel.shape == (2, KERNEL, KERNEL)
    for k in batch.kernel:
        assert float(kernel_similarity(k, truth)) > 0.9
        assert k.min() >= 0 and abs(k.sum() - 1) < 1e-5
        # centred: the centre of mass within half a tap of (kh // 2, kw // 2)
        assert np.all(np.abs(np.asarray(kernels.center_of_mass(k)) - KERNEL // 2) <= 0.5 + 1e-4)
        # blur convention: the estimate matches the truth, not its 180-degree rotation (a correlation kernel)
        assert float(kernel_similarity(k, truth)) > float(kernel_similarity(k, kernels.flip(truth))) + 0.1


def test_objective_decreases_and_history_has_one_entry_per_alternation(problem):
    _, _, batch = problem
    cfg = batch.config
    scales = len(batch.scales)
    assert scales == len(pyramid((SIZE, SIZE), (KERNEL, KERNEL), cfg)) >= 2
    objective = batch.history["objective"]
    assert objective.shape == (2, scales * cfg.iterations)
    assert batch.history["scale"].tolist() == np.repeat(np.arange(scales), cfg.iterations).tolist()
    assert np.all(np.isfinite(objective))
    for scale in range(scales):  # each scale has its own image: the objective decreases within a scale
        assert np.all(np.diff(objective[:, batch.history["scale"] == scale], axis=1) < 0)
    assert np.all(objective[:, -1] < 0.8 * objective[:, 0])


def test_a_batch_equals_the_images_one_by_one(problem):
    _, blurred, batch = problem
    # Batch entries do not interact: the same image twice, beside itself or another one, gives identical results.
    twice = estimate_kernels(blurred[[1, 1]], KERNEL, preset="tiny")
    np.testing.assert_array_equal(twice.kernel[0], batch.kernel[1])
    np.testing.assert_array_equal(twice.kernel[0], twice.kernel[1])
    # One by one (unbatched FFTs round differently; the L0 hard thresholds amplify it a little).
    for i in range(2):
        single = estimate_kernels(blurred[i], KERNEL, preset="tiny")
        assert single.kernel.shape == (KERNEL, KERNEL) and single.latent.shape == (SIZE, SIZE)
        np.testing.assert_allclose(single.kernel, batch.kernel[i], atol=3e-3)
        assert float(kernel_similarity(single.kernel, batch.kernel[i])) > 0.9999
        np.testing.assert_allclose(single.history["objective"], batch.history["objective"][i], rtol=0.05)


def test_map_deblur_colour_kernel_from_luma_every_channel_restored(problem):
    truth, blurred, batch = problem
    sharp = shapes(0)
    rgb = np.stack([sharp, 0.6 * sharp + 0.2, 1.0 - sharp], axis=-1)
    y = np.asarray(blur(rgb, truth, "reflect"))
    result = map_deblur(y, KERNEL, preset="tiny", seed=123)
    assert result.image.shape == y.shape and result.kernel.shape == (KERNEL, KERNEL)
    assert result.method == "map" and result.seed == 123
    assert float(kernel_similarity(result.kernel, truth)) > 0.9
    inner = (slice(KERNEL, -KERNEL), slice(KERNEL, -KERNEL))
    for c in range(3):
        before = np.mean((y[inner][..., c] - rgb[inner][..., c]) ** 2)
        after = np.mean((result.image[inner][..., c] - rgb[inner][..., c]) ** 2)
        assert after < 0.5 * before


@pytest.mark.parametrize(
    ("blurred", "kernel_size", "error", "match"),
    [
        (np.zeros((SIZE, SIZE, 2, 2), np.float32), KERNEL, ValueError, "one gray image"),
        (np.zeros((SIZE, SIZE), np.uint8), KERNEL, TypeError, "floating point"),
        (np.full((SIZE, SIZE), np.nan, np.float32), KERNEL, ValueError, "NaN"),
        (shapes(0)[:8, :20], KERNEL, ValueError, r"larger than the image / window \(8, 20\)"),
        (shapes(0), 0, ValueError, "kernel_size must be a positive int"),
        (np.full((SIZE, SIZE), 0.3, np.float32), KERNEL, ValueError, "flat"),
    ],
)
def test_bad_input_gets_a_clear_error(blurred, kernel_size, error, match):
    with pytest.raises(error, match=match):
        estimate_kernels(blurred, kernel_size, preset="tiny")


def test_flat_windows_of_a_batch_are_named_and_bad_configs_refused():
    batch = np.stack([shapes(0), np.full((SIZE, SIZE), 0.5, np.float32)])
    assert edge_contrast(batch)[1] == 0 and edge_contrast(batch)[0] > 0.1
    with pytest.raises(ValueError, match=r"image\(s\) \[1\] is flat"):
        estimate_kernels(batch, KERNEL, preset="tiny")
    with pytest.raises(ValueError, match="scale_factor"):
        MapConfig(scale_factor=1.5)
    with pytest.raises(ValueError, match="unknown config field"):
        estimate_kernels(shapes(0), KERNEL, config={"not_a_field": 1})
    with pytest.raises(ValueError, match="expected \\(H, W\\)"):
        map_deblur(np.zeros((SIZE, SIZE, 4), np.float32), KERNEL)


def test_components_label_8_connected_blobs_and_drop_the_light_ones():
    support = np.zeros((7, 7), bool)
    support[1, 1] = support[2, 2] = support[3, 3] = True  # one diagonal (8-connected) component
    support[5, 5] = True  # an isolated tap
    labels = np.asarray(jax.jit(label_components)(jnp.asarray(support)))
    assert len({labels[1, 1], labels[2, 2], labels[3, 3]}) == 1
    assert labels[5, 5] not in (0, labels[1, 1]) and labels[0, 0] == 0
    k = jnp.asarray(support, jnp.float32).at[5, 5].set(0.2)
    cleaned = np.asarray(jax.jit(lambda k: clean_kernel(k, threshold=0.05, min_mass=0.1))(k))
    # the isolated tap holds 0.2 / 3.2 < 0.1 of the mass
    assert cleaned[5, 5] == 0 and np.isclose(cleaned.sum(), 1) and np.isclose(cleaned[2, 2], 1 / 3)
