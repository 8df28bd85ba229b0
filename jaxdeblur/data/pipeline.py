"""Host data pipeline (grain): shuffled, repeated, randomly cropped, batched, sharded, resumable.

`loader` builds, from a source of `jaxdeblur.data.sources`, the stream

    source -> shuffle (seed; reshuffled every epoch) -> repeat (num_epochs)
           -> random tile crop (seed, element index) -> batches of the global
              batch size (drop remainder) -> this process's rows of each batch

as a grain ``MapDataset`` (every element is a pure function of the seed and
its index), turned into an iterator. ``iterator.get_state()`` is a small
dict (e.g. {"next_index": 12}); ``set_state`` on a fresh iterator of the same
pipeline continues with exactly the batches the original would have produced
(store the state in the training checkpoint).

Batches are {name: np.ndarray (B / shard_count, tile, tile, C) float32}
with the source's record names ({"sharp"} or {"blurred", "sharp"}). For
synthetic blur, ``tile = degrade.tile_size(cfg)`` and `degrade.degrade` runs on
device; for a paired source ``tile = cfg.crop`` (the same window is cut from
the blurred and the sharp image) and `degrade.augment` flips them jointly.
"""

from __future__ import annotations

import dataclasses

import grain
import jax
import numpy as np
from absl import flags

from jaxdeblur.data.sources import Source, Subset


@dataclasses.dataclass(frozen=True)
class RandomTile:
    """grain random map: the same random tile x tile window cut from every image of a record.

    The window is uniform over the positions inside the image (``rng`` comes
    from grain, seeded by the pipeline seed and the element index).
    """

    tile: int

    def __call__(self, record: dict, rng: np.random.Generator) -> dict:
        h, w = next(iter(record.values())).shape[:2]
        top = int(rng.integers(0, h - self.tile + 1))
        left = int(rng.integers(0, w - self.tile + 1))
        return _cut(record, top, left, self.tile)


@dataclasses.dataclass(frozen=True)
class CentreTile:
    """grain map: the central tile x tile window of every image of a record."""

    tile: int

    def __call__(self, record: dict) -> dict:
        h, w = next(iter(record.values())).shape[:2]
        return _cut(record, (h - self.tile) // 2, (w - self.tile) // 2, self.tile)


def _cut(record: dict, top: int, left: int, tile: int) -> dict:
    return {name: np.ascontiguousarray(x[top : top + tile, left : left + tile]) for name, x in record.items()}


def _check_positive_int(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_tiles_fit(source: Source, tile: int) -> None:
    """Raise ValueError naming the first image smaller than tile x tile (sizes read from the file headers)."""
    tile = _check_positive_int("tile", tile)
    for i in range(len(source)):
        h, w = source.image_size(i)
        if h < tile or w < tile:
            raise ValueError(
                f"crop larger than the image: {source.name(i)} is {h}x{w} (H x W) but the pipeline cuts "
                f"{tile}x{tile} tiles (for synthetic blur tile = crop + kernel_size - 1); use a smaller crop "
                "or larger images"
            )


def _allow_unparsed_absl_flags() -> None:
    """Let grain's worker processes start outside an absl app.

    grain 0.2.x reads an absl flag when it starts workers and raises
    UnparsedFlagAccessError in a plain script (google/grain issue #1355, fixed
    upstream by reading the default); marking the flags parsed makes it use
    the defaults. A program that parses its flags itself is left alone.
    """
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def loader(
    source: Source,
    *,
    batch_size: int,
    tile: int,
    seed: int = 0,
    num_epochs: int | None = None,
    shard_index: int | None = None,
    shard_count: int | None = None,
    workers: int = 0,
    prefetch: int = 0,
) -> grain.DatasetIterator:
    """A resumable iterator of host batches of random tiles.

    Every element is a pure function of (seed, its index in the stream):
    the epoch order is a permutation drawn from (seed, epoch), the tile
    position from (seed, element index). Global batch j holds the stream
    elements j * batch_size ... (j + 1) * batch_size - 1; process
    `shard_index` of `shard_count` gets its consecutive block of
    batch_size / shard_count rows, so the processes' batches concatenated
    in shard order are the one-process batch.

    Args:
      source: a data source (`ImageFolder`, `PairedFolder`, `SamplePhotos`,
        `Subset`, or anything with len / getitem / image_size / name).
      batch_size: GLOBAL batch size (all processes), a multiple of shard_count.
      tile: side in pixels of the square crops; every image must be at
        least tile x tile (checked before the first batch).
      seed: integer seed of the shuffle and the crops.
      num_epochs: passes over the source; None repeats forever. With a
        finite count the stream is cut to whole global batches (batches may
        straddle epochs).
      shard_index, shard_count: this process's shard; default
        jax.process_index() and jax.process_count().
      workers: grain worker processes (0: read in this process). The batches
        do not depend on it, but a state is only valid for the same count;
        call the iterator's close() when done to stop the workers.
      prefetch: batches read ahead by as many threads (0: read on demand).

    Returns:
      A grain DatasetIterator of {name: np.ndarray (batch_size / shard_count,
      tile, tile, C) float32}, with get_state() / set_state(state).

    Raises:
      ValueError: bad sizes or counts, an image smaller than the tile (named),
        or a finite stream shorter than one global batch.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    shard_count = jax.process_count() if shard_count is None else _check_positive_int("shard_count", shard_count)
    shard_index = jax.process_index() if shard_index is None else shard_index
    if not isinstance(shard_index, (int, np.integer)) or not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be an integer in [0, {shard_count}), got {shard_index!r}")
    if batch_size % shard_count:
        raise ValueError(f"batch_size {batch_size} is not a multiple of shard_count {shard_count}")
    if num_epochs is not None:
        num_epochs = _check_positive_int("num_epochs", num_epochs)
    for name, value in (("workers", workers), ("prefetch", prefetch)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    check_tiles_fit(source, tile)

    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(num_epochs)
    ds = ds.random_map(RandomTile(int(tile)), seed=seed)
    if num_epochs is not None:
        whole = len(ds) // batch_size * batch_size
        if whole == 0:
            raise ValueError(
                f"{len(source)} records x {num_epochs} epoch(s) do not fill one batch of {batch_size}; "
                "use more epochs or a smaller batch"
            )
        ds = ds[:whole]
    local = batch_size // shard_count
    ds = ds.batch(local, drop_remainder=True)[int(shard_index) :: shard_count]
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=int(prefetch), prefetch_buffer_size=int(prefetch)))
    if workers:
        _allow_unparsed_absl_flags()
        it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(workers)))
    return iter(it_ds)


def eval_batches(
    source: Source, *, batch_size: int, tile: int, num_batches: int | None = None, seed: int | None = None
) -> list[dict[str, np.ndarray]]:
    """A fixed list of host batches for validation: the first records, in order, cropped deterministically.

    Args:
      source: a data source (e.g. the held-out half of `sources.split`).
      batch_size: records per batch (every batch is full).
      tile: crop side in pixels (every image used must be at least tile x tile).
      num_batches: how many batches; default len(source) // batch_size
        (the last records that do not fill a batch are left out).
      seed: None for centre crops, else the seed of random crops (the same
        windows for the same seed).

    Returns:
      [{name: np.ndarray (batch_size, tile, tile, C) float32}] of length num_batches.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    available = len(source) // batch_size
    num_batches = available if num_batches is None else _check_positive_int("num_batches", num_batches)
    if not 1 <= num_batches <= available:
        raise ValueError(
            f"{len(source)} records give {available} full batch(es) of {batch_size}, "
            f"cannot make {num_batches}"
        )
    used = Subset(source, range(num_batches * batch_size))
    check_tiles_fit(used, tile)
    ds = grain.MapDataset.source(used)
    ds = ds.map(CentreTile(int(tile))) if seed is None else ds.random_map(RandomTile(int(tile)), seed=seed)
    batches = ds.batch(batch_size)
    return [batches[i] for i in range(num_batches)]


class ArrayRecords:
    """In-memory records for grain: record i is {name: array[i]} of equally long arrays (e.g. labelled patches)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        lengths = {len(v) for v in self.arrays.values()}
        if len(lengths) != 1 or not lengths.pop():
            raise ValueError(f"arrays must be non-empty and equally long, got "
                             f"{ {k: len(v) for k, v in self.arrays.items()} }")

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[index] for k, v in self.arrays.items()}


def array_loader(arrays: dict[str, np.ndarray], *, batch_size: int, seed: int = 0,
                 shard_index: int | None = None, shard_count: int | None = None) -> grain.DatasetIterator:
    """A resumable iterator of shuffled batches of in-memory arrays (repeated forever, reshuffled every epoch).

    Like `loader` without the tiles: record i is {name: arrays[name][i]};
    global batch j holds stream elements j * batch_size ... (j + 1) *
    batch_size - 1 (batches may straddle epochs), this process gets its block
    of batch_size / shard_count rows; get_state / set_state resume exactly.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    shard_count = jax.process_count() if shard_count is None else _check_positive_int("shard_count", shard_count)
    shard_index = jax.process_index() if shard_index is None else shard_index
    if batch_size % shard_count:
        raise ValueError(f"batch_size {batch_size} is not a multiple of shard_count {shard_count}")
    ds = grain.MapDataset.source(ArrayRecords(arrays)).shuffle(seed=seed).repeat(None)
    ds = ds.batch(batch_size // shard_count, drop_remainder=True)[int(shard_index)::shard_count]
    return iter(ds.to_iter_dataset())


__all__ = ["ArrayRecords", "CentreTile", "RandomTile", "array_loader", "check_tiles_fit", "eval_batches", "loader"]
