"""Host pipeline: deterministic by seed, resumable (get_state / set_state), epochs, crops, sharding,
eval batches, and bad data errors."""

import numpy as np
import pytest
from PIL import Image

from jaxdeblur.data import pipeline, sources

TILE = 6


class Ramps:
    """In-memory source: record i is {"sharp": i + ramp, "blurred": 2 (i + ramp)} of size (10 + i % 3, 12).

    Pixel (y, x) of record i holds i * 1000 + y * 100 + x, so a tile tells the record and the window.
    """

    def __init__(self, n=10, paired=False):
        self.n, self.paired = n, paired

    def __len__(self):
        return self.n

    def image_size(self, i):
        return 10 + i % 3, 12

    def name(self, i):
        return f"ramp{i}"

    def __getitem__(self, i):
        h, w = self.image_size(i)
        y, x = np.mgrid[:h, :w]
        sharp = (i * 1000 + y * 100 + x).astype(np.float32)[..., None]
        return {"sharp": sharp, "blurred": 2 * sharp} if self.paired else {"sharp": sharp}


def _take(iterator, count):
    return [next(iterator) for _ in range(count)]


def _records(batch):
    """Record index of every tile of a batch."""
    return [int(t[0, 0, 0] // 1000) for t in batch["sharp"]]


def test_deterministic_by_seed_and_tiles_are_windows():
    source = Ramps()
    first = _take(pipeline.loader(source, batch_size=4, tile=TILE, seed=3, shard_count=1, shard_index=0), 6)
    again = _take(pipeline.loader(source, batch_size=4, tile=TILE, seed=3, shard_count=1, shard_index=0), 6)
    other = _take(pipeline.loader(source, batch_size=4, tile=TILE, seed=4, shard_count=1, shard_index=0), 6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["sharp"], b["sharp"])
    assert any(not np.array_equal(a["sharp"], b["sharp"]) for a, b in zip(first, other))
    corners = set()
    for batch in first:
        assert batch["sharp"].shape == (4, TILE, TILE, 1) and batch["sharp"].dtype == np.float32
        for tile in batch["sharp"][..., 0]:
            i, y, x = int(tile[0, 0] // 1000), int(tile[0, 0] % 1000 // 100), int(tile[0, 0] % 100)
            np.testing.assert_array_equal(tile, source[i]["sharp"][y : y + TILE, x : x + TILE, 0])
            corners.add((y, x))
    assert len(corners) > 5  # crop positions vary


def test_epochs_visit_every_record_once_and_reshuffle():
    batches = _take(pipeline.loader(Ramps(8), batch_size=4, tile=TILE, seed=0, shard_count=1, shard_index=0), 4)
    order = [r for b in batches for r in _records(b)]
    assert sorted(order[:8]) == sorted(order[8:]) == list(range(8))
    assert order[:8] != order[8:]
    finite = pipeline.loader(Ramps(5), batch_size=2, tile=TILE, num_epochs=3, shard_count=1, shard_index=0)
    assert len(list(finite)) == 7  # 15 records, whole batches of 2
    with pytest.raises(ValueError, match="do not fill one batch"):
        pipeline.loader(Ramps(3), batch_size=4, tile=TILE, num_epochs=1, shard_count=1, shard_index=0)


def test_resumed_iterator_continues_the_same_sequence():
    make = lambda: pipeline.loader(Ramps(), batch_size=3, tile=TILE, seed=1, shard_count=1, shard_index=0)  # noqa: E731
    original = make()
    _take(original, 5)
    state = original.get_state()
    expected = _take(original, 6)  # crosses an epoch boundary (10 records, batches of 3)
    resumed = make()
    resumed.set_state(state)
    for a, b in zip(expected, _take(resumed, 6)):
        np.testing.assert_array_equal(a["sharp"], b["sharp"])


def test_shards_concatenate_to_the_global_batch():
    source = Ramps()
    whole = _take(pipeline.loader(source, batch_size=4, tile=TILE, seed=2, shard_count=1, shard_index=0), 3)
    parts = [_take(pipeline.loader(source, batch_size=4, tile=TILE, seed=2, shard_count=2, shard_index=p), 3)
             for p in range(2)]
    for j in range(3):
        assert parts[0][j]["sharp"].shape[0] == 2
        np.testing.assert_array_equal(np.concatenate([parts[0][j]["sharp"], parts[1][j]["sharp"]]), whole[j]["sharp"])
    with pytest.raises(ValueError, match="multiple of shard_count"):
        pipeline.loader(source, batch_size=3, tile=TILE, shard_count=2, shard_index=0)
    with pytest.raises(ValueError, match="shard_index"):
        pipeline.loader(source, batch_size=4, tile=TILE, shard_count=2, shard_index=2)


def test_paired_records_are_cut_at_the_same_window():
    batch = next(pipeline.loader(Ramps(paired=True), batch_size=5, tile=TILE, shard_count=1, shard_index=0))
    assert set(batch) == {"blurred", "sharp"}
    np.testing.assert_array_equal(batch["blurred"], 2 * batch["sharp"])


def test_eval_batches_are_fixed():
    source = Ramps(7)
    centre = pipeline.eval_batches(source, batch_size=3, tile=TILE)
    assert len(centre) == 2 and [_records(b) for b in centre] == [[0, 1, 2], [3, 4, 5]]
    for i, tile in enumerate(np.concatenate([b["sharp"] for b in centre])[..., 0]):
        h, w = source.image_size(i)
        top, left = (h - TILE) // 2, (w - TILE) // 2
        np.testing.assert_array_equal(tile, source[i]["sharp"][top : top + TILE, left : left + TILE, 0])
    seeded = pipeline.eval_batches(source, batch_size=3, tile=TILE, num_batches=1, seed=5)
    np.testing.assert_array_equal(seeded[0]["sharp"], pipeline.eval_batches(source, batch_size=3, tile=TILE,
                                                                            num_batches=1, seed=5)[0]["sharp"])
    assert not np.array_equal(seeded[0]["sharp"], centre[0]["sharp"])
    with pytest.raises(ValueError, match="cannot make 3"):
        pipeline.eval_batches(source, batch_size=3, tile=TILE, num_batches=3)


def test_crop_larger_than_an_image_is_named(tmp_path):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((12, 30), np.uint8)).save(tmp_path / "small.png")
    source = sources.ImageFolder(tmp_path)
    with pytest.raises(ValueError, match=r"crop larger than the image: .*small\.png is 12x30.*16x16"):
        pipeline.loader(source, batch_size=2, tile=16, shard_count=1, shard_index=0)
    with pytest.raises(ValueError, match=r"small\.png is 12x30"):
        pipeline.eval_batches(source, batch_size=2, tile=16)
    assert next(pipeline.loader(source, batch_size=2, tile=12))["sharp"].shape == (2, 12, 12, 1)


def test_train400_batches(train400_root):
    source = sources.ImageFolder(train400_root)
    assert len(source) == 400
    loader = pipeline.loader(source, batch_size=8, tile=64, seed=0)
    for batch in _take(loader, 3):
        x = batch["sharp"]
        assert x.shape == (8, 64, 64, 1) and x.dtype == np.float32
        assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.01
