"""What the golden-fixture scripts of the PyTorch rebuilds share: their command line and how they write arrays."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def golden_arguments(doc: str) -> argparse.Namespace:
    """The options of a make_*_golden script: --reference PATH (write only a float64 reference there, not the
    committed fixture) and --paper (with --reference: the authors' full network instead of the tiny one)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="write only a float64 reference (not a fixture) here")
    parser.add_argument("--paper", action="store_true", help="with --reference: the authors' full network")
    return parser.parse_args()


def write_arrays(path: Path, arrays: dict, *, compressed: bool) -> Path:
    """Saves `arrays` (name -> array-like) as one .npz at `path` (its folder made), zip-compressed or not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **{k: np.asarray(v) for k, v in arrays.items()})
    return path
