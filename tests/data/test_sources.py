"""Training sources: image folders (recursive, sorted, any format / size), GoPro-layout pairs,
scikit-image photos, subsets; clear errors for bad data."""

import numpy as np
import pytest
from PIL import Image

from jaxdeblur.data import sources
from jaxdeblur.data.benchmarks import sample_photos


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Images of several formats, sizes and depths in nested folders, plus files that are not images."""
    rng = np.random.default_rng(0)
    _write(tmp_path / "b.png", rng.integers(0, 256, (12, 10), dtype=np.uint8))
    _write(tmp_path / "a" / "z.bmp", rng.integers(0, 256, (9, 14, 3), dtype=np.uint8))
    _write(tmp_path / "a" / "y.JPG", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    _write(tmp_path / "c" / "d" / "x.tif", rng.integers(0, 256, (11, 13), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    return tmp_path


def test_image_folder_finds_sorts_and_reads(folder):
    gray = sources.ImageFolder(folder)
    names = [p.relative_to(folder).as_posix() for p in gray.paths]
    assert names == ["a/y.JPG", "a/z.bmp", "b.png", "c/d/x.tif"]
    assert len(gray) == 4 and gray.channels == 1
    rgb = sources.ImageFolder(folder, mode="rgb")
    for i, shape in enumerate([(16, 16), (9, 14), (12, 10), (11, 13)]):
        record, colour = gray[i], rgb[i]
        assert set(record) == {"sharp"}
        assert record["sharp"].shape == shape + (1,) and colour["sharp"].shape == shape + (3,)
        assert record["sharp"].dtype == np.float32 and 0 <= record["sharp"].min() <= record["sharp"].max() <= 1
        assert gray.image_size(i) == shape
    expected = np.asarray(Image.open(folder / "b.png"), np.float32) / 255
    np.testing.assert_array_equal(gray[2]["sharp"][..., 0], expected)
    np.testing.assert_array_equal(gray[-1]["sharp"], gray[3]["sharp"])
    assert gray.name(2) == str(folder / "b.png")
    with pytest.raises(IndexError):
        gray[4]


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sources.ImageFolder(tmp_path / "missing")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        sources.ImageFolder(tmp_path / "empty")
    with pytest.raises(ValueError, match="mode"):
        sources.ImageFolder(tmp_path, mode="cmyk")


def test_unreadable_image_is_named(tmp_path):
    _write(tmp_path / "good.png", np.zeros((8, 8), np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG this is not really a png")
    source = sources.ImageFolder(tmp_path)
    assert source.name(0) == str(bad)
    with pytest.raises(ValueError, match="bad.png"):
        source[0]
    with pytest.raises(ValueError, match="bad.png"):
        source.image_size(0)


@pytest.fixture
def gopro(tmp_path):
    rng = np.random.default_rng(1)
    for seq, names in (("GOPR01", ["000001.png", "000002.png"]), ("GOPR02", ["000007.png"])):
        for name in names:
            sharp = rng.integers(0, 200, (10, 12, 3), dtype=np.uint8)
            _write(tmp_path / seq / "sharp" / name, sharp)
            _write(tmp_path / seq / "blur" / name, sharp + 50)
    return tmp_path


def test_paired_folder_pairs_by_name(gopro):
    pairs = sources.PairedFolder(gopro, mode="rgb")
    assert len(pairs) == 3
    assert [(b.parent.parent.name, b.name) for b, _ in pairs.pairs] == [
        ("GOPR01", "000001.png"), ("GOPR01", "000002.png"), ("GOPR02", "000007.png")]
    for i in range(3):
        record = pairs[i]
        assert set(record) == {"blurred", "sharp"} and record["sharp"].shape == (10, 12, 3)
        np.testing.assert_allclose(record["blurred"] - record["sharp"], 50 / 255, atol=1e-6)
        assert pairs.image_size(i) == (10, 12)
    assert pairs.name(2).startswith(str(gopro / "GOPR02" / "blur" / "000007.png"))
    assert sources.PairedFolder(gopro)[0]["sharp"].shape == (10, 12, 1)


def test_paired_folder_errors(gopro, tmp_path):
    (gopro / "GOPR02" / "sharp" / "000007.png").rename(gopro / "GOPR02" / "sharp" / "000008.png")
    with pytest.raises(ValueError, match=r"without a partner.*000007\.png.*000008\.png"):
        sources.PairedFolder(gopro)
    (gopro / "GOPR02" / "sharp" / "000008.png").rename(gopro / "GOPR02" / "sharp" / "000007.png")
    _write(gopro / "GOPR01" / "blur" / "000002.png", np.zeros((10, 11, 3), np.uint8))
    pairs = sources.PairedFolder(gopro)
    for access in (pairs.__getitem__, pairs.image_size):
        message = r"GOPR01/blur/000002\.png.*\(10, 11\).*GOPR01/sharp/000002\.png.*\(10, 12\)"
        with pytest.raises(ValueError, match=message):
            access(1)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no image pairs"):
        sources.PairedFolder(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):
        sources.PairedFolder(tmp_path / "absent")


def test_sample_photos_need_no_data():
    photos = sources.SamplePhotos(("camera", "astronaut"), mode="rgb", size=32)
    assert len(photos) == 2 and photos.channels == 3 and photos.image_size(1) == (32, 32)
    expected = sample_photos(("camera", "astronaut"), size=32, gray=False)
    np.testing.assert_array_equal(photos[1]["sharp"], expected["astronaut"])
    gray = sources.SamplePhotos(("coins",), size=32)
    assert gray[0]["sharp"].shape == (32, 32, 1) and gray.name(0) == "skimage.data.coins"
    with pytest.raises(ValueError, match="unknown sample photo"):
        sources.SamplePhotos(("lena",))


def test_subset_and_split(folder):
    source = sources.ImageFolder(folder)
    train, held = sources.split(source, held_out=1)
    assert len(train) == 3 and len(held) == 1
    np.testing.assert_array_equal(held[0]["sharp"], source[3]["sharp"])
    assert held.image_size(0) == source.image_size(3) and held.name(0) == source.name(3)
    with pytest.raises(ValueError, match="held_out"):
        sources.split(source, held_out=4)
    with pytest.raises(IndexError):
        sources.Subset(source, [0, 9])


def test_concat_and_several_data_entries(folder):
    """data "A:skimage:skimage" concatenates a folder and the photos twice (weighting them up), in order."""
    image_folder = sources.ImageFolder(folder, mode="rgb")
    photos = sources.SamplePhotos(mode="rgb")
    sources.task_sources.cache_clear()
    train, val = sources.task_sources(f"{folder}:skimage:skimage", str(folder), paired=False, mode="rgb",
                                      held_out=1)
    assert isinstance(train, sources.Concat) and len(train) == len(image_folder) + 2 * len(photos)
    last = len(image_folder) + len(photos) + 1  # the second copy's second photo
    np.testing.assert_array_equal(train[last]["sharp"], photos[1]["sharp"])
    assert train.name(last) == photos.name(1) and train.image_size(0) == image_folder.image_size(0)
    np.testing.assert_array_equal(train[-1]["sharp"], photos[-1]["sharp"])
    assert train.channels == 3 and len(val) == len(image_folder)
    with pytest.raises(ValueError, match="one mode"):
        sources.Concat([image_folder, sources.SamplePhotos(mode="gray")])
    with pytest.raises(ValueError, match="empty entry"):
        sources.task_sources(f"{folder}::skimage", None, paired=False, mode="rgb", held_out=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sources.task_sources(f"{folder}:nowhere", None, paired=False, mode="rgb", held_out=1)
    with pytest.raises(ValueError, match="paired data is one"):
        sources.task_sources(f"{folder}:skimage", None, paired=True, mode="rgb", held_out=1)
