"""FolderData: the (blurred, sharp) pairs, tile size and fixed validation batches of the folder-trained tasks."""

import numpy as np

from jaxdeblur.data.degrade import tile_size
from jaxdeblur.models import nafnet
from jaxdeblur.models.folder_data import pair


def test_pair_keeps_the_two_images_and_moves_them_to_the_host():
    batch = {"blurred": np.zeros((1, 2, 2, 1)), "sharp": np.ones((1, 2, 2, 1)), "kernel": np.ones((1, 3, 3))}
    assert set(pair(batch)) == {"blurred", "sharp"} and pair(batch)["sharp"] is batch["sharp"]
    assert all(isinstance(v, np.ndarray) for v in pair(batch, host=True).values())


def test_unpaired_validation_batches_are_degraded_once_with_the_eval_seed():
    task = nafnet.make_task(nafnet.PRESETS["tiny"])  # skimage's photos, blurred on the fly
    d = task.config.data
    assert not d.paired and task._tile() == tile_size(d.degrade)
    first, second = task.eval_batches(), task.eval_batches()
    assert len(first) == d.eval_batches
    crop = d.degrade.crop
    assert first[0]["blurred"].shape == (d.eval_batch_size, crop, crop, task.config.channels)
    for a, b in zip(first, second):  # the same validation set every time
        np.testing.assert_array_equal(a["blurred"], b["blurred"])
    assert not np.allclose(first[0]["blurred"], first[0]["sharp"])  # degraded
