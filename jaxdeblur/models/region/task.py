"""The region classifier's training task for the one trainer: labelled windows, binary cross-entropy.

Data: `labels.cached_labels(data, config)` (built once, cached on disk);
the windows of the last `held_out_images` images are the evaluation set,
the others are shuffled and batched on the host (`data.pipeline.array_loader`,
resumable). `prepare` turns the 8-bit windows into floats and, with
`config.augment`, applies one random flip / 90-degree rotation per window.
The loss is the paper's binary cross-entropy (eq. 2) on the network's logit.
Evaluation (the whole held-out split in one batch unless `eval_batch_size`):
cross-entropy, accuracy at probability 0.5, ROC AUC (the Mann-Whitney
statistic: the probability that a random good window scores above a random
bad one; 0.5 when one class is absent) and the fraction of good windows.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxdeblur.data.pipeline import array_loader
from jaxdeblur.models.region.config import RegionConfig
from jaxdeblur.models.region.labels import cached_labels
from jaxdeblur.nets.region_cnn import RegionCNN
from jaxdeblur.train.task import Task


def build_model(config: RegionConfig, *, rngs: nnx.Rngs) -> RegionCNN:
    """The `RegionCNN` of a config, in training mode (call `.eval()` for inference)."""
    return RegionCNN(blocks=config.blocks, widths=config.widths, stem_width=config.stem_width,
                     stem_kernel=config.stem_kernel, momentum=config.momentum, rngs=rngs)


def default_data() -> str:
    """train400 under the shared data root (`jaxdeblur.data.default_root()`)."""
    from jaxdeblur.data.benchmarks import default_root

    return str(default_root() / "train400")


@functools.lru_cache(maxsize=4)
def _labels(data: str, config: RegionConfig, cache_dir: str | None) -> dict:
    return cached_labels(data, config, cache_dir=cache_dir, log=print)


def dihedral(x: jax.Array, codes: jax.Array) -> jax.Array:
    """Each square window x[i] (N, P, P, C) flipped / rotated by codes[i] in 0..7 (the dihedral group)."""
    variants = [x, jnp.flip(x, 2)]
    variants += [jnp.rot90(v, r, axes=(1, 2)) for v in variants[:2] for r in (1, 2, 3)]
    stacked = jnp.stack(variants)  # (8, N, P, P, C)
    return jnp.take_along_axis(stacked, codes[None, :, None, None, None], axis=0)[0]


def roc_auc(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """ROC AUC by the Mann-Whitney rank statistic (ties broken by position); 0.5 if a class is absent."""
    ranks = jnp.argsort(jnp.argsort(scores)).astype(jnp.float32) + 1.0
    pos = jnp.sum(labels)
    neg = labels.shape[0] - pos
    u = jnp.sum(ranks * labels) - pos * (pos + 1) / 2
    return jnp.where((pos > 0) & (neg > 0), u / jnp.maximum(pos * neg, 1.0), 0.5)


@dataclasses.dataclass(frozen=True)
class RegionTask(Task):
    """Trains `RegionCNN` on labelled windows (see the module docstring).

    Attributes:
      config: the `RegionConfig`.
      data: the folder of sharp training images (default train400 of the shared data).
      cache_dir: where the labels are cached (default runs/region_labels in the working directory).
    """

    config: RegionConfig
    data: str | None = None
    cache_dir: str | None = None
    name: str = "region"
    best_metric: tuple[str, str] = ("auc", "max")

    def labels(self) -> dict:
        """The cached label record (`labels.cached_labels`), built on first use."""
        return _labels(self.data or default_data(), self.config, self.cache_dir)

    def init_model(self, rngs: nnx.Rngs) -> RegionCNN:
        return build_model(self.config, rngs=rngs)

    def optimizer(self) -> optax.GradientTransformation:
        cfg = self.config
        lr = (optax.cosine_decay_schedule(cfg.learning_rate, cfg.train.steps, alpha=cfg.lr_min_ratio)
              if cfg.cosine else cfg.learning_rate)
        if cfg.optimizer == "sgd":
            return optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.sgd(lr, momentum=0.9))
        return optax.adamw(lr, weight_decay=cfg.weight_decay)

    def train_loader(self, seed: int):
        rec = self.labels()
        train = ~rec["held_out"]
        return array_loader({"patch": rec["patches"][train], "label": rec["labels"][train]},
                            batch_size=self.config.train.batch_size, seed=seed)

    def eval_batches(self) -> list[dict]:
        rec = self.labels()
        held = rec["held_out"]
        patches, labels = rec["patches"][held], rec["labels"][held]
        size = self.config.eval_batch_size or len(labels)
        return [{"patch": patches[s:s + size], "label": labels[s:s + size]}
                for s in range(0, len(labels) - size + 1, size)]

    def prepare(self, key: jax.Array, batch: dict) -> dict:
        x = batch["patch"].astype(jnp.float32)[..., None] / 255.0
        if self.config.augment:
            x = dihedral(x, jax.random.randint(key, (x.shape[0],), 0, 8))
        return {"patch": x, "label": batch["label"].astype(jnp.float32)}

    def loss(self, model: RegionCNN, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        logits = model(batch["patch"])
        bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, batch["label"]))
        accuracy = jnp.mean((logits > 0) == (batch["label"] > 0.5))
        return bce, {"bce": bce, "accuracy": accuracy}

    def evaluate(self, model: RegionCNN, batch: dict) -> dict:
        x = batch["patch"].astype(jnp.float32)[..., None] / 255.0
        labels = batch["label"].astype(jnp.float32)
        logits = model(x)
        return {"bce": jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels)),
                "accuracy": jnp.mean((logits > 0) == (labels > 0.5)), "auc": roc_auc(logits, labels),
                "positive_rate": jnp.mean(labels)}


def make_task(config: RegionConfig, *, data=None, val_data=None, cache_dir=None) -> RegionTask:
    """The task of `config`; `data`: the folder of sharp training images (default train400).

    The held-out split is part of `data` (its last `held_out_images` images): `val_data` must be None.
    """
    if val_data is not None:
        raise ValueError("the region model holds out the last held_out_images images of --data; "
                         "--val-data is not used (set --set held_out_images=N instead)")
    return RegionTask(config, data=None if data is None else str(Path(data)),
                      cache_dir=None if cache_dir is None else str(cache_dir))
