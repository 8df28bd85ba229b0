"""A tiny model for the trainer's tests, shaped like a real model module (see jaxdeblur.models).

A whole trained model in one file: registered by one line (``models.MODELS["toy"] = "tests.train.toy"``, a
monkeypatch in the tests), it passes the contract every registered model passes (tests/models/test_contract.py).

A 2-layer conv denoiser with BatchNorm (so the trainer must carry
non-trainable state) on 8 x 8 gray images of 2 x 2 blocks. The loader yields
only image indices (a counter); `prepare` draws the images from the indices
and the noise from the step key, on device. Evaluation uses fixed host batches.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdeblur.train import Task, TrainSettings

SIZE = 8
EVAL_BATCHES = 2


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    width: int = 4
    lr: float = 0.02
    noise: float = 0.2
    train: TrainSettings = TrainSettings(steps=8, batch_size=8, eval_every=4, checkpoint_every=2, log_every=2,
                                         keep_checkpoints=2)


PRESETS = {"tiny": ToyConfig()}


class Denoiser(nnx.Module):
    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, width, (3, 3), use_bias=False, rngs=rngs)  # BatchNorm follows: a bias is void
        self.norm = nnx.BatchNorm(width, rngs=rngs)
        self.conv2 = nnx.Conv(width, 1, (3, 3), rngs=rngs)

    def __call__(self, x):
        return x + self.conv2(nnx.relu(self.norm(self.conv1(x))))


def build_model(config: ToyConfig, *, rngs: nnx.Rngs) -> Denoiser:
    return Denoiser(config.width, rngs=rngs)


def make_inference(model: Denoiser, config: ToyConfig):
    model.eval()
    graphdef, state = nnx.split(model)
    apply = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    return lambda x: apply(state, jnp.asarray(x, jnp.float32))


def clean_images(key: jax.Array, count: int) -> jax.Array:
    """(count, 8, 8, 1) images of 2 x 2 blocks of uniform values."""
    blocks = jax.random.uniform(key, (count, SIZE // 2, SIZE // 2, 1))
    return jnp.repeat(jnp.repeat(blocks, 2, axis=1), 2, axis=2)


def psnr(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean over the batch of each image's PSNR (dB, peak 1)."""
    return jnp.mean(-10.0 * jnp.log10(jnp.mean(jnp.square(x - y), axis=(1, 2, 3))))


class CounterLoader:
    """Yields {"index": (B,) image indices, "poison": (B,) added to the inputs (NaN at `poison_at`)}.

    Raises KeyboardInterrupt when asked for batch number `interrupt_at` (a simulated Ctrl-C).
    """

    def __init__(self, batch_size: int, *, poison_at=(), interrupt_at=None):
        self.batch_size, self.poison_at, self.interrupt_at = batch_size, poison_at, interrupt_at
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self.position == self.interrupt_at:
            raise KeyboardInterrupt
        b = self.batch_size
        poison = np.full(b, np.nan if self.position in self.poison_at else 0.0, np.float32)
        batch = {"index": np.arange(self.position * b, (self.position + 1) * b, dtype=np.int32), "poison": poison}
        self.position += 1
        return batch

    def get_state(self) -> dict:
        return {"position": self.position}

    def set_state(self, state: dict) -> None:
        self.position = state["position"]


@dataclasses.dataclass(frozen=True)
class ToyTask(Task):
    """The toy's task. Fields with compare=False do not change the compiled step (shared across tests)."""

    config: ToyConfig
    name: str = "toy"
    best_metric: tuple[str, str] = dataclasses.field(default=("psnr", "max"), compare=False)
    poison_at: tuple[int, ...] = dataclasses.field(default=(), compare=False)
    interrupt_at: int | None = dataclasses.field(default=None, compare=False)

    def init_model(self, rngs: nnx.Rngs) -> Denoiser:
        return build_model(self.config, rngs=rngs)

    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.config.lr)

    def train_loader(self, seed: int) -> CounterLoader:
        return CounterLoader(self.config.train.batch_size, poison_at=self.poison_at, interrupt_at=self.interrupt_at)

    def eval_batches(self) -> list[dict]:
        rng = np.random.default_rng(7)
        out = []
        for _ in range(EVAL_BATCHES):
            blocks = rng.uniform(size=(8, SIZE // 2, SIZE // 2, 1)).astype(np.float32)
            clean = blocks.repeat(2, axis=1).repeat(2, axis=2)
            noisy = clean + self.config.noise * rng.standard_normal(clean.shape).astype(np.float32)
            out.append({"noisy": noisy, "clean": clean})
        return out

    def prepare(self, key: jax.Array, batch: dict) -> dict:
        images = jax.vmap(lambda i: clean_images(jax.random.fold_in(jax.random.key(1234), i), 1)[0])
        clean = images(batch["index"])
        noise = self.config.noise * jax.random.normal(key, clean.shape)
        return {"noisy": clean + noise + batch["poison"][:, None, None, None], "clean": clean}

    def loss(self, model: Denoiser, batch: dict, key: jax.Array):
        mse = jnp.mean(jnp.square(model(batch["noisy"]) - batch["clean"]))
        return mse, {"mse": mse}

    def evaluate(self, model: Denoiser, batch: dict) -> dict:
        return {"psnr": psnr(model(batch["noisy"]), batch["clean"])}


def make_task(config: ToyConfig, *, data=None) -> ToyTask:
    return ToyTask(config)


def check_metrics(inference, config: ToyConfig) -> dict:
    """{"check_psnr"}: the PSNR (dB) of `inference` on a fixed, data-free noisy set (the first eval batch)."""
    batch = ToyTask(config).eval_batches()[0]
    return {"check_psnr": float(psnr(jnp.asarray(inference(batch["noisy"])), batch["clean"]))}
