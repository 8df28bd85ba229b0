"""UFPNet's training task for the one trainer: NAFNet's data and optimiser, UFPNet's stages and losses.

`UFPNetTask` reuses `jaxdeblur.models.nafnet.NAFNetTask` for everything about
data (sources, loader, synthetic or paired crops, the fixed validation
batches) and its AdamW + cosine optimiser; it adds the network
(`build_network`: flow + code net + kernel-conditioned NAFNet), the
pretrained parts loaded at initialisation (`init_model`), the trainable
filter of the stage and the stage's losses:

- L_KE (`kernel_estimation_loss`): mean |blur_sv(sharp, K(blurred)) - blurred|;
- reblur (`reblur_loss`): mean |blur_sv(restored, K(blurred)) - blurred|;
- PSNR loss: -PSNR(restored, sharp) in dB (NAFNet's).

blur_sv is `jaxdeblur.forward.blur_spatially_varying` (true convolution,
replicate padding). The L1 terms skip a border of kernel_size // 2 pixels:
the synthetic blurred crops come from a "valid" blur of a larger tile, so
near the border the blurred pixel depends on sharp pixels outside the crop
that the replicate padding cannot know (at 64 px crops and 19 px kernels
the border is half the crop). The reference applies the losses to whole
256 px crops.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.forward import blur_spatially_varying
from jaxdeblur.models.kernel_prior import build_flow
from jaxdeblur.metrics import psnr_per_image
from jaxdeblur.models.nafnet.task import NAFNetTask
from jaxdeblur.models.ufpnet.config import UFPNetConfig
from jaxdeblur.nets.ufpnet import UFPNet

# The fixed key of the code noise at evaluation and inference (the reference samples it at test time too).
EVAL_KEY_SEED = 0
# Which parts of `UFPNet` each stage trains (the flow is never trained) and where they come from.
TRAINED = {"kernel": ("code_net",), "deblur": ("deblur",), "joint": ("code_net", "deblur")}
FROM_INIT = {"kernel": (), "deblur": ("flow", "code_net"), "joint": ("flow", "code_net", "deblur")}
BEST = {"kernel": ("reblur_l1", "min"), "deblur": ("psnr", "max"), "joint": ("psnr", "max")}


def build_network(config: UFPNetConfig, rngs: nnx.Rngs) -> UFPNet:
    """The UFPNet of `config`, freshly (randomly) initialised, the flow included."""
    return UFPNet(build_flow(config.prior, rngs=rngs), channels=config.channels, width=config.width,
                  enc_blocks=config.enc_blocks, middle_blocks=config.middle_blocks, dec_blocks=config.dec_blocks,
                  conditioned_levels=config.conditioned_levels, code_widths=config.code_widths,
                  code_middle_width=config.code_middle_width, code_middle_convs=config.code_middle_convs,
                  code_sigma_per_tap=config.code_sigma_per_tap, code_std_eps=config.code_std_eps, rngs=rngs)


def pretrained_state(weights: str, *, expected_model: str) -> nnx.State:
    """The full host state (numpy arrays) of shipped / exported weights: a `jaxdeblur.models.load` name or a
    weights folder <root>/<model>/<preset>.

    Raises:
      ValueError: the weights belong to another model than `expected_model`.
      FileNotFoundError: no such weights (from `jaxdeblur.models.load_weights`).
    """
    from jaxdeblur.models.weights import load_weights  # noqa: PLC0415 - weights import the registry, which imports us lazily

    with jax.ensure_compile_time_eval():  # also when first called while the trainer traces init_model
        return jax.device_get(nnx.state(load_weights(str(weights), model=expected_model).model))


def _check_shapes(part: str, target: nnx.State, source: nnx.State, weights: str) -> None:
    shapes = jax.tree.map(jnp.shape, target), jax.tree.map(jnp.shape, source)
    if shapes[0] != shapes[1]:
        raise ValueError(f"the {part} of {weights!r} does not fit this config's {part} (other sizes); use the "
                         "config the weights were trained with")


def interior(x: jax.Array, border: int) -> jax.Array:
    """x (N, H, W, ...) without `border` pixels on each side of H and W."""
    return x[:, border:x.shape[1] - border, border:x.shape[2] - border] if border else x


def reblur_l1(image: jax.Array, kernels: jax.Array, blurred: jax.Array, *, border: int) -> jax.Array:
    """Mean |blur_sv(image, kernels) - blurred| over the interior: image, blurred (N, H, W, C), kernels (N, H, W, kh, kw)."""
    return jnp.mean(jnp.abs(interior(blur_spatially_varying(image, kernels) - blurred, border)))


def reblur_at(image: jax.Array, kernels: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """`blur_spatially_varying(image, field)` at the pixels (rows, cols) whose kernels are given, -> (N, M, C).

    image (N, H, W, C); kernels (N, M, kh, kw) of the pixels (rows[n, m], cols[n, m])
    (N, M), which must lie at least kh // 2 (kw // 2) pixels inside the
    image (there the replicate padding plays no part).
    """
    kh, kw = kernels.shape[-2:]
    r = rows[..., None, None] + kh // 2 - jnp.arange(kh)[:, None]
    c = cols[..., None, None] + kw // 2 - jnp.arange(kw)[None, :]
    patches = image[jnp.arange(image.shape[0])[:, None, None, None], r, c]  # (N, M, kh, kw, C)
    return jnp.einsum("nmab,nmabc->nmc", kernels, patches)


@dataclasses.dataclass(frozen=True)
class UFPNetTask(NAFNetTask):
    """Trains one UFPNet stage (`config.stage`); data and optimiser as `NAFNetTask` (module docstring).

    Attributes:
      config: the `UFPNetConfig`.
      data, val_data: as `NAFNetTask` (sharp images blurred on the fly, or GoPro pairs).
    """

    config: UFPNetConfig
    data: str | None = None
    val_data: str | None = None
    name: str = "ufpnet"
    best_metric: tuple[str, str] = dataclasses.field(init=False, default=("psnr", "max"))

    def __post_init__(self):
        object.__setattr__(self, "best_metric", BEST[self.config.stage])
        if self.config.stage != "kernel" and self.config.init_weights is None:
            raise ValueError(f"stage {self.config.stage!r} needs init_weights: the weights folder exported by the "
                             "previous stage (e.g. `jaxdeblur train ufpnet --preset cpu_kernel ... --export DIR` "
                             "writes DIR/ufpnet/cpu_kernel)")
        self._pretrained()  # fail fast on missing or mismatched weights

    @property
    def border(self) -> int:
        """Pixels left out of the L1 losses on each side (kernel_size // 2)."""
        return self.config.data.degrade.kernel_size // 2

    def _pretrained(self) -> dict[str, tuple[str, nnx.State]]:
        """{part: (source, host state)} of the parts that start from saved weights."""
        cfg = self.config
        out = {}
        if cfg.stage == "kernel" and cfg.prior_weights is not None:
            out["flow"] = (cfg.prior_weights, pretrained_state(cfg.prior_weights, expected_model="kernel_prior"))
        if FROM_INIT[cfg.stage]:
            state = pretrained_state(cfg.init_weights, expected_model="ufpnet")
            out.update({part: (cfg.init_weights, state[part]) for part in FROM_INIT[cfg.stage]})
        return out

    def init_model(self, rngs: nnx.Rngs) -> UFPNet:
        model = build_network(self.config, rngs)
        for part, (source, state) in self._pretrained().items():
            module = getattr(model, part)
            _check_shapes(part, nnx.state(module), state, source)
            nnx.update(module, state)
        return model

    def trainable(self):
        """The Params of the stage's trained parts (`TRAINED`); the flow is never trained."""
        return nnx.All(nnx.Param, nnx.Any(*(nnx.PathContains(part) for part in TRAINED[self.config.stage])))

    def kernel_estimation_loss(self, kernels: jax.Array, batch: dict) -> jax.Array:
        """L_KE: the sharp crop re-blurred with the predicted kernels against the blurred crop (interior L1)."""
        return reblur_l1(batch["sharp"], kernels, batch["blurred"], border=self.border)

    def sampled_kernel_estimation_loss(self, model: UFPNet, batch: dict, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(L_KE on `config.ke_pixels` uniform random interior pixels per image, their sigma (N, M))."""
        blurred = batch["blurred"]
        n, h, w, _ = blurred.shape
        k_rows, k_cols, k_noise = jax.random.split(key, 3)
        shape, b = (n, self.config.ke_pixels), self.border
        rows = jax.random.randint(k_rows, shape, b, h - b)
        cols = jax.random.randint(k_cols, shape, b, w - b)
        kernels, sigma = model.estimate_kernels_at(blurred, rows, cols, k_noise)
        target = blurred[jnp.arange(n)[:, None], rows, cols]  # (N, M, C)
        return jnp.mean(jnp.abs(reblur_at(batch["sharp"], kernels, rows, cols) - target)), sigma

    def loss(self, model: UFPNet, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        cfg = self.config
        if cfg.stage == "kernel" and cfg.ke_pixels:
            ke, sigma = self.sampled_kernel_estimation_loss(model, batch, key)
            return ke, {"reblur_l1": ke, "sigma": jnp.mean(sigma)}
        if cfg.stage == "kernel":
            kernels, sigma = model.estimate_kernels(batch["blurred"], key)
            ke = self.kernel_estimation_loss(kernels, batch)
            return ke, {"reblur_l1": ke, "sigma": jnp.mean(sigma)}
        restored, kernels, sigma = model(batch["blurred"], key)
        psnr = jnp.mean(psnr_per_image(restored, batch["sharp"]))
        reblur = reblur_l1(restored, kernels, batch["blurred"], border=self.border)
        loss = -psnr + cfg.reblur_weight * reblur
        metrics = {"psnr": psnr, "reblur": reblur, "sigma": jnp.mean(sigma)}
        if cfg.stage == "joint":
            ke = self.kernel_estimation_loss(kernels, batch)
            loss, metrics = loss + cfg.kernel_weight * ke, {**metrics, "reblur_l1": ke}
        return loss, metrics

    def evaluate(self, model: UFPNet, batch: dict) -> dict:
        """Kernel stage: L_KE ("reblur_l1"); other stages also the PSNR (dB) of the clamped restoration and
        of the input. The code noise uses a fixed key (EVAL_KEY_SEED)."""
        key = jax.random.key(EVAL_KEY_SEED)
        if self.config.stage == "kernel":
            kernels, _ = model.estimate_kernels(batch["blurred"], key)
            return {"reblur_l1": self.kernel_estimation_loss(kernels, batch)}
        restored, kernels, _ = model(batch["blurred"], key)
        return {"psnr": jnp.mean(psnr_per_image(jnp.clip(restored, 0.0, 1.0), batch["sharp"])),
                "psnr_input": jnp.mean(psnr_per_image(batch["blurred"], batch["sharp"])),
                "reblur_l1": self.kernel_estimation_loss(kernels, batch)}


def make_task(config: UFPNetConfig, *, data=None, val_data=None) -> UFPNetTask:
    """The task of one stage: `data` a folder of sharp images (or GoPro pairs for a paired config), None for
    the photos bundled with scikit-image; `val_data` a validation folder (None: hold out part of `data`)."""
    return UFPNetTask(config, data=None if data is None else str(data),
                      val_data=None if val_data is None else str(val_data))
