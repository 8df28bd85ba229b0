"""On-device degradation: equals `blur` with its kernel, kernel fields equal `blur_spatially_varying`,
determinism by key, kernel validity, augmentation keeps pairs aligned, config checks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur.data import degrade as dg
from jaxdeblur.forward import blur, blur_spatially_varying

N = 8
# One small shape for every program of this file: crops 16 x 16, kernels 7 x 7, tiles 22 x 22.
UNIFORM = dg.DegradeConfig(
    crop=16, kernel_size=7, kind_probs=(0.4, 0.3, 0.3), motion_length=(2.0, 6.0), gaussian_sigma=(0.5, 1.5),
    disk_radius=(1.0, 3.5), noise_sigma=(0.0, 0.0), quantize=False, augment=False,
)
# The other path: kernel fields for half of the images, motion kernels, augmentation, noise, 8-bit levels.
FIELD = dataclasses.replace(
    UNIFORM, kind_probs=(1.0, 0.0, 0.0), spatially_varying=0.5, grid=(2, 3), noise_sigma=(0.03, 0.03),
    quantize=True, augment=True,
)
OFFSET = (UNIFORM.kernel_size - 1) // 2


@pytest.fixture(scope="module")
def tiles():
    side = dg.tile_size(UNIFORM)
    assert side == 22
    return np.random.default_rng(0).uniform(0.2, 0.8, (N, side, side, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def uniform(tiles):
    return dg.degrade(jax.random.key(0), tiles, UNIFORM)


@pytest.fixture(scope="module")
def field(tiles):
    return dg.degrade(jax.random.key(1), tiles, FIELD)


def test_uniform_equals_blur_with_its_kernel(tiles, uniform):
    assert uniform["blurred"].shape == uniform["sharp"].shape == (N, 16, 16, 2)
    assert uniform["kernel"].shape == (N, 7, 7) and uniform["kernel_grid"].shape == (N, 1, 1, 7, 7)
    np.testing.assert_array_equal(uniform["kernel_grid"][:, 0, 0], uniform["kernel"])
    np.testing.assert_array_equal(uniform["sharp"], tiles[:, OFFSET:-OFFSET, OFFSET:-OFFSET])
    np.testing.assert_allclose(uniform["blurred"], blur(tiles, uniform["kernel"], "valid"), atol=1e-6)
    np.testing.assert_array_equal(uniform["noise_sigma"], 0.0)
    # the blur is real: blurred differs from sharp
    assert float(jnp.max(jnp.abs(uniform["blurred"] - uniform["sharp"]))) > 0.05


def test_determinism_by_key(tiles, uniform):
    again = dg.degrade(jax.random.key(0), tiles, UNIFORM)
    other = dg.degrade(jax.random.key(7), tiles, UNIFORM)
    for name in uniform:
        np.testing.assert_array_equal(again[name], uniform[name])
    assert not np.allclose(other["kernel"], uniform["kernel"])
    assert not np.allclose(other["blurred"], uniform["blurred"])


def test_kernels_valid_and_of_every_kind(uniform, field):
    centre = UNIFORM.kernel_size // 2
    for k in (uniform["kernel"], field["kernel"], field["kernel_grid"].reshape(-1, 7, 7)):
        k = np.asarray(k)
        assert k.min() >= 0
        np.testing.assert_allclose(k.sum(axis=(-2, -1)), 1.0, atol=1e-5)
        # centred in the support: centre of mass within half a pixel of the centre tap
        rows, cols = np.arange(7) @ k.sum(-1).T, np.arange(7) @ k.sum(-2).T
        assert np.all(np.abs(rows - centre) <= 0.5) and np.all(np.abs(cols - centre) <= 0.5)
    k = np.asarray(uniform["kernel"])
    symmetric = np.array([np.allclose(ki, ki.T, atol=1e-6) and np.allclose(ki, ki[::-1], atol=1e-6) for ki in k])
    assert symmetric.any() and not symmetric.all()  # gaussian / disk kernels and motion kernels both drawn
    disk_cut = 3.5 + 0.75  # a tap whose pixel square touches the largest disk lies within r + sqrt(2) / 2
    y, x = np.mgrid[:7, :7] - centre
    assert np.all(k[symmetric][:, np.hypot(y, x) > disk_cut] < 1e-3)


def test_constant_grid_equals_uniform_blur(tiles, uniform):
    grid = jnp.broadcast_to(uniform["kernel"][:, None, None], (N, 2, 3, 7, 7))
    np.testing.assert_allclose(dg.blur_kernel_grid(tiles, grid), uniform["blurred"], atol=1e-5)


def test_grid_blur_equals_blur_spatially_varying_with_the_field(tiles, field):
    grid = field["kernel_grid"]
    assert grid.shape == (N, 2, 3, 7, 7)
    varying = np.array([not np.allclose(g, g[0, 0]) for g in np.asarray(grid)])
    assert varying.any() and not varying.all()  # probability 0.5: both kinds of image in the batch
    kmap = dg.kernel_field(grid, 16)
    assert kmap.shape == (N, 16, 16, 7, 7)
    np.testing.assert_allclose(kmap.sum(axis=(-2, -1)), 1.0, atol=1e-5)
    np.testing.assert_allclose(kmap[:, 0, 0], grid[:, 0, 0], atol=1e-6)  # corner pixels hold the corner nodes
    np.testing.assert_allclose(kmap[:, -1, -1], grid[:, -1, -1], atol=1e-6)
    np.testing.assert_allclose(kmap[:, 0, 15], grid[:, 0, 2], atol=1e-6)
    np.testing.assert_allclose(field["kernel"], kmap.mean(axis=(1, 2)), atol=1e-6)
    # 'valid' blur by the field == per-pixel blur of the tile with the field edge-padded to the tile, centre crop
    padded = jnp.pad(kmap, ((0, 0), (OFFSET, OFFSET), (OFFSET, OFFSET), (0, 0), (0, 0)), mode="edge")
    expected = blur_spatially_varying(tiles, padded)[:, OFFSET:-OFFSET, OFFSET:-OFFSET]
    np.testing.assert_allclose(dg.blur_kernel_grid(tiles, grid), expected, atol=1e-5)


def _dihedral_np(x, code):
    """NumPy reference of the 8 flips / rotations: code bits = transpose, flip rows, flip columns."""
    x = np.swapaxes(x, 0, 1) if code & 1 else x
    x = x[::-1] if code & 2 else x
    return x[:, ::-1] if code & 4 else x


def test_field_noise_quantisation_and_augmentation_keep_pairs_aligned(tiles, field):
    blurred = np.asarray(field["blurred"])
    assert blurred.min() >= 0 and blurred.max() <= 1
    np.testing.assert_allclose(blurred * 255, np.round(blurred * 255), atol=1e-3)
    codes = [
        next(c for c in range(8) if np.array_equal(_dihedral_np(t, c)[OFFSET:-OFFSET, OFFSET:-OFFSET], s))
        for t, s in zip(tiles, np.asarray(field["sharp"]))
    ]
    assert len(set(codes)) > 1
    moved = np.stack([_dihedral_np(t, c) for t, c in zip(tiles, codes)])
    residual = blurred - np.asarray(dg.blur_kernel_grid(moved, field["kernel_grid"]))
    std = residual.std(axis=(1, 2, 3))
    assert np.all((0.02 < std) & (std < 0.04)) and np.abs(residual).max() < 0.2
    np.testing.assert_array_equal(field["noise_sigma"], np.float32(0.03))


def test_paired_augment_moves_images_and_kernels_together(tiles, uniform):
    batch = {"tile": tiles, "blurred": uniform["blurred"], "kernel": uniform["kernel"]}
    out = dg.augment(jax.random.key(3), batch)
    again = dg.augment(jax.random.key(3), batch)
    for name in batch:
        assert out[name].shape == batch[name].shape
        np.testing.assert_array_equal(out[name], again[name])
    np.testing.assert_allclose(blur(out["tile"], out["kernel"], "valid"), out["blurred"], atol=1e-5)
    assert not np.array_equal(out["tile"], tiles)
    with pytest.raises(ValueError, match="square"):
        dg.augment(jax.random.key(0), {"x": np.zeros((2, 4, 5, 1), np.float32)})


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"crop": 0}, "crop"),
        ({"kernel_size": 8}, "odd"),
        ({"kind_probs": (0.5, 0.2, 0.2)}, "kind_probs"),
        ({"kind_probs": (1.2, -0.2, 0.0)}, "kind_probs"),
        ({"motion_length": (6.0, 2.0)}, "ordered"),
        ({"noise_sigma": (-0.1, 0.1)}, "noise_sigma"),
        ({"disk_radius": (1.0, 4.0)}, "disk_radius"),
        ({"gaussian_sigma": (0.5, 2.0)}, "gaussian_sigma"),
        ({"spatially_varying": 1.5}, "probability"),
        ({"grid": (0, 2)}, "grid"),
        ({"grid": (2, 17)}, "grid"),
    ],
)
def test_config_checks(changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(UNIFORM, **changes)


def test_unused_kinds_keep_their_ranges():
    cfg = dg.DegradeConfig(crop=8, kernel_size=5, kind_probs=(1.0, 0.0, 0.0), motion_length=(1.0, 4.0))
    assert cfg.disk_radius[1] > 2.5  # the default radius range does not fit, but no disk is drawn


def test_wrong_tile_size_is_reported(uniform):
    with pytest.raises(ValueError, match=r"tile_size"):
        dg.degrade(jax.random.key(0), np.zeros((2, 20, 20, 1), np.float32), UNIFORM)
