"""Training data sources: random-access collections of images, usable as grain data sources.

Every source has ``len(source)``, ``source[i]`` (a record: a dict of NumPy
float32 (H, W, C) arrays in [0, 1], C = 1 for mode "gray" and 3 for mode
"rgb"), ``source.image_size(i)`` ((H, W) in pixels, from the file header
where possible, so a pipeline can check every image against its crop size
before training starts) and ``source.name(i)`` (the file(s) or photo, for
messages). Records of one source may have different sizes; the
pipeline (`jaxdeblur.data.pipeline`) crops fixed tiles from them.

* `ImageFolder`: sharp images anywhere under a folder -> {"sharp"}.
* `PairedFolder`: the GoPro layout ``root/<sequence>/blur/<name>`` with
  ``root/<sequence>/sharp/<name>`` -> {"blurred", "sharp"}.
* `SamplePhotos`: photos bundled in scikit-image (no data needed) -> {"sharp"}.
* `Subset`: a view of some records of another source (e.g. a held-out split).
* `Concat`: the records of several sources one after another (e.g. train400
  plus the scikit-image photos).
* `task_sources`: the (training, validation) sources of a supervised task's
  folders (what every model's Task reads).

Images are read with `jaxdeblur.io.load_image` (its bit-depth, palette, alpha,
EXIF and gray-conversion rules apply), lazily, one record per access.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from jaxdeblur.data.benchmarks import SAMPLE_PHOTOS, sample_photos
from jaxdeblur.io import load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MODES = ("gray", "rgb")
# EXIF orientations that swap width and height (transpose, rotations by 90 / 270 degrees).
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


class Source(Protocol):
    """What the pipeline needs from a source (all classes here implement it)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, np.ndarray]: ...

    def image_size(self, index: int) -> tuple[int, int]: ...

    def name(self, index: int) -> str: ...

    @property
    def channels(self) -> int: ...


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def _folder(root, what: str) -> Path:
    root = Path(os.fspath(root))
    if not root.is_dir():
        raise FileNotFoundError(f"{what} folder {root} does not exist (or is not a folder)")
    return root


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _with_channels(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 1); (H, W, 3) unchanged."""
    return image[..., None] if image.ndim == 2 else image


def _load(path: Path, mode: str) -> np.ndarray:
    """An image file as float32 (H, W, C) in [0, 1]; errors as `jaxdeblur.io.load_image` (they name the file)."""
    return _with_channels(load_image(path, mode=mode))


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file as `load_image` returns it, read from the header (EXIF rotation included).

    A file PIL cannot open from its header is decoded by `load_image`, which
    raises its usual error naming the file.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSING_ORIENTATIONS:
                width, height = height, width
    except (UnidentifiedImageError, OSError, SyntaxError):
        return tuple(load_image(path).shape[:2])
    return height, width


def _check_index(index, length: int) -> int:
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"index must be an integer, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a source of {length} records")
    return int(index) % length


class ImageFolder:
    """Sharp images found recursively under a folder, in sorted order.

    Files with a suffix in `IMAGE_SUFFIXES` (any case; hidden files skipped)
    are sorted by their path relative to `root` (POSIX form), so the order and
    hence every seeded pipeline is the same on every machine.

    Args:
      root: the folder (e.g. DIV2K's HR folder, train400, GoPro sharp frames).
      mode: "gray" (records (H, W, 1)) or "rgb" ((H, W, 3)).

    Records: {"sharp": float32 (H, W, C) in [0, 1]}.

    Raises:
      FileNotFoundError: `root` does not exist.
      ValueError: no image file under `root`; unknown mode. Reading a record
        raises `load_image`'s errors, which name the file.
    """

    def __init__(self, root, *, mode: str = "gray"):
        self.mode = _check_mode(mode)
        self.root = _folder(root, "image")
        found = [p for p in self.root.rglob("*") if _is_image(p)]
        if not found:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {self.root}")
        self.paths = tuple(sorted(found, key=lambda p: p.relative_to(self.root).as_posix()))

    @property
    def channels(self) -> int:
        return 1 if self.mode == "gray" else 3

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"sharp": _load(self.paths[_check_index(index, len(self))], self.mode)}

    def image_size(self, index: int) -> tuple[int, int]:
        return _header_size(self.paths[_check_index(index, len(self))])

    def name(self, index: int) -> str:
        return str(self.paths[_check_index(index, len(self))])

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}, mode={self.mode!r}, {len(self)} images)"


class PairedFolder:
    """Blurred / sharp pairs in the GoPro layout ``root/<sequence>/{blur,sharp}/<name>``.

    Every image file in ``root/*/blur/`` must have a file of the same name in
    the sibling ``sharp/`` folder and vice versa. Pairs are sorted by
    ``<sequence>/<name>``. Pass GoPro's ``train`` (or ``test``) folder as root:
    its sequences are the subfolders.

    Args:
      root: the folder holding the sequence folders.
      mode: "gray" (records (H, W, 1)) or "rgb" ((H, W, 3)).

    Records: {"blurred", "sharp"}: float32 (H, W, C) in [0, 1], aligned, same shape.

    Raises:
      FileNotFoundError: `root` does not exist.
      ValueError: no pair found; a blurred image without its sharp one (or
        the reverse; the message names the files); a pair whose images differ
        in size (on reading the record or its `image_size`; names both files).
    """

    def __init__(self, root, *, mode: str = "gray"):
        self.mode = _check_mode(mode)
        self.root = _folder(root, "paired (GoPro layout)")
        blurred, sharp = (
            {p.parent.parent.name + "/" + p.name: p for p in self.root.glob(f"*/{side}/*") if _is_image(p)}
            for side in ("blur", "sharp")
        )
        if not blurred and not sharp:
            raise ValueError(
                f"no image pairs found under {self.root}: expected the GoPro layout "
                "root/<sequence>/blur/<name>.png with root/<sequence>/sharp/<name>.png"
            )
        unmatched = sorted(str(blurred[k]) for k in blurred.keys() - sharp.keys())
        unmatched += sorted(str(sharp[k]) for k in sharp.keys() - blurred.keys())
        if unmatched:
            raise ValueError(
                f"{len(unmatched)} image(s) under {self.root} without a partner of the same name in the sibling "
                f"blur/ or sharp/ folder: {', '.join(unmatched[:4])}" + (" ..." if len(unmatched) > 4 else "")
            )
        self.pairs = tuple((blurred[k], sharp[k]) for k in sorted(blurred))

    @property
    def channels(self) -> int:
        return 1 if self.mode == "gray" else 3

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        blurred_path, sharp_path = self.pairs[_check_index(index, len(self))]
        record = {"blurred": _load(blurred_path, self.mode), "sharp": _load(sharp_path, self.mode)}
        _check_pair(blurred_path, sharp_path, record["blurred"].shape[:2], record["sharp"].shape[:2])
        return record

    def image_size(self, index: int) -> tuple[int, int]:
        blurred_path, sharp_path = self.pairs[_check_index(index, len(self))]
        size = _header_size(blurred_path)
        _check_pair(blurred_path, sharp_path, size, _header_size(sharp_path))
        return size

    def name(self, index: int) -> str:
        blurred_path, sharp_path = self.pairs[_check_index(index, len(self))]
        return f"{blurred_path} (with {sharp_path})"

    def __repr__(self) -> str:
        return f"PairedFolder({str(self.root)!r}, mode={self.mode!r}, {len(self)} pairs)"


def _check_pair(blurred_path: Path, sharp_path: Path, blurred_size, sharp_size) -> None:
    if tuple(blurred_size) != tuple(sharp_size):
        raise ValueError(
            f"blurred image {blurred_path} is {tuple(blurred_size)} (H, W) but its sharp image {sharp_path} "
            f"is {tuple(sharp_size)}"
        )


class SamplePhotos:
    """The photos bundled in scikit-image (`jaxdeblur.data.SAMPLE_PHOTOS`): training with no data at all.

    The photos come from `jaxdeblur.data.sample_photos` (centre square,
    resized to size x size, held in memory).

    Args:
      names: a subset of `SAMPLE_PHOTOS` (default all 8).
      mode: "gray" (records (size, size, 1)) or "rgb" ((size, size, 3)).
      size: side in pixels.

    Records: {"sharp": float32 (size, size, C) in [0, 1]}.
    """

    def __init__(self, names: Sequence[str] = SAMPLE_PHOTOS, *, mode: str = "gray", size: int = 256):
        self.mode = _check_mode(mode)
        photos = sample_photos(tuple(names), size=size, gray=mode == "gray")
        self.names = tuple(photos)
        self._images = tuple(_with_channels(img) for img in photos.values())

    @property
    def channels(self) -> int:
        return 1 if self.mode == "gray" else 3

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"sharp": self._images[_check_index(index, len(self))]}

    def image_size(self, index: int) -> tuple[int, int]:
        return self._images[_check_index(index, len(self))].shape[:2]

    def name(self, index: int) -> str:
        return f"skimage.data.{self.names[_check_index(index, len(self))]}"

    def __repr__(self) -> str:
        return f"SamplePhotos({self.names}, mode={self.mode!r})"


class Subset:
    """The records `indices` of another source, in that order (e.g. a held-out split).

    Args:
      source: any source of this module (or with the same interface).
      indices: record indices of `source` (may repeat).
    """

    def __init__(self, source: Source, indices: Sequence[int]):
        self.source = source
        self.indices = tuple(_check_index(i, len(source)) for i in indices)
        if not self.indices:
            raise ValueError("indices must select at least one record")

    @property
    def channels(self) -> int:
        return self.source.channels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.source[self.indices[_check_index(index, len(self))]]

    def image_size(self, index: int) -> tuple[int, int]:
        return self.source.image_size(self.indices[_check_index(index, len(self))])

    def name(self, index: int) -> str:
        return self.source.name(self.indices[_check_index(index, len(self))])

    def __repr__(self) -> str:
        return f"Subset({self.source!r}, {len(self)} records)"


class Concat:
    """The records of several sources one after another (all of the same mode).

    A source named twice is sampled twice as often by a pipeline that draws
    records uniformly: that is how a small set is weighted up.

    Args:
      sources: at least one source; all must have the same `channels`.
    """

    def __init__(self, sources: Sequence[Source]):
        self.sources = tuple(sources)
        if not self.sources:
            raise ValueError("Concat needs at least one source")
        channels = {s.channels for s in self.sources}
        if len(channels) != 1:
            raise ValueError(f"Concat needs sources of one mode, got channels {sorted(channels)}")
        self._starts = np.cumsum([0] + [len(s) for s in self.sources])

    @property
    def channels(self) -> int:
        return self.sources[0].channels

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int) -> tuple[Source, int]:
        index = _check_index(index, len(self))
        which = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.sources[which], index - int(self._starts[which])

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        source, i = self._locate(index)
        return source[i]

    def image_size(self, index: int) -> tuple[int, int]:
        source, i = self._locate(index)
        return source.image_size(i)

    def name(self, index: int) -> str:
        source, i = self._locate(index)
        return source.name(i)

    def __repr__(self) -> str:
        return f"Concat({list(self.sources)!r})"


SAMPLE_PHOTOS_ENTRY = "skimage"


def _data_source(data: str, *, paired: bool, mode: str) -> Source:
    """The source of a `data` string: one folder, or several entries joined by os.pathsep (see `task_sources`)."""
    entries = str(data).split(os.pathsep)
    if any(not e for e in entries):
        raise ValueError(f"empty entry in data {data!r} (entries are joined by {os.pathsep!r})")
    if paired and len(entries) > 1:
        raise ValueError(f"paired data is one GoPro-layout folder, got {len(entries)} entries in {data!r}")
    folder = PairedFolder if paired else ImageFolder
    sources = [SamplePhotos(mode=mode) if e == SAMPLE_PHOTOS_ENTRY and not paired else folder(e, mode=mode)
               for e in entries]
    return sources[0] if len(sources) == 1 else Concat(sources)


def split(source: Source, *, held_out: int) -> tuple[Subset, Subset]:
    """(training, held-out) views: the last `held_out` records are held out (deterministic, no shuffle).

    Raises:
      ValueError: held_out not in [1, len(source) - 1].
    """
    n = len(source)
    if int(held_out) != held_out or not 1 <= held_out < n:
        raise ValueError(f"held_out must be an integer in [1, {n - 1}] for a source of {n} records, got {held_out!r}")
    held_out = int(held_out)
    return Subset(source, range(n - held_out)), Subset(source, range(n - held_out, n))


@functools.cache
def task_sources(data: str | None, val_data: str | None, *, paired: bool, mode: str,
                 held_out: int) -> tuple[Source, Source]:
    """(training source, validation source) of a supervised task's folders (cached: folders are listed once).

    Args:
      data: a folder of sharp images (`ImageFolder`), or of GoPro-layout pairs (`PairedFolder`) when
        `paired`; None: the scikit-image photos (`SamplePhotos`, no data needed). Unpaired data may name
        several entries joined by os.pathsep (":" on POSIX), each a folder or "skimage" (the photos);
        their records are concatenated (`Concat`), an entry named twice counts twice.
      val_data: the validation folder (same layout); None holds out the last `held_out` records of data
        (`split`).
      paired: the folders hold pairs.
      mode: "gray" or "rgb".
      held_out: records held out when val_data is None.
    """
    source = SamplePhotos(mode=mode) if data is None else _data_source(data, paired=paired, mode=mode)
    if val_data is None:
        return split(source, held_out=held_out)
    return source, _data_source(val_data, paired=paired, mode=mode)


__all__ = [
    "IMAGE_SUFFIXES",
    "Concat",
    "ImageFolder",
    "PairedFolder",
    "SamplePhotos",
    "Source",
    "Subset",
    "split",
    "task_sources",
]
