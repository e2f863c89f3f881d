"""Real images from disk for the lab: a folder searched recursively, with optional groups (e.g. scans)."""

from __future__ import annotations

from pathlib import Path
import numpy as np
import pandas as pd
from PIL import Image

from synthscope.lab.models import IMAGE_SIZE, LabError


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def load_real_folder(path: str | Path, groups_csv: str | Path | None = None,
                     size_policy: str = "resize") -> tuple[np.ndarray, list[str], np.ndarray | None, list[str]]:
    """Read every image under ``path`` (recursively, sorted) as uint8 [n,256,256].

    Returns images, ids (file stems), groups (from ``groups_csv``: first column the id, second the group;
    ids it does not list become their own group) and a list of skipped files with the reason.
    """
    root = Path(path)
    if not root.is_dir():
        raise LabError(f"{root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise LabError(f"no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) found under {root}")
    stems = [p.stem for p in files]
    dupes = pd.Series(stems)[pd.Series(stems).duplicated(keep=False)]
    if len(dupes):
        first = dupes.iloc[0]
        both = [str(p) for p in files if p.stem == first][:2]
        raise LabError(f"duplicate image id {first!r}: {both[0]} and {both[1]}")
    try:
        from synthscope.data import read_image  # the project's reader (palette, RGB, 16-bit handled)
    except ImportError:  # pragma: no cover - used only before synthscope.data exists
        read_image = None
    images, ids, skipped = [], [], []
    for p in files:
        try:
            if read_image is not None:
                img = read_image(p, size_policy=size_policy)
            else:
                with Image.open(p) as im:
                    im = im.convert("L")
                    if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                        im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
                    img = np.asarray(im, dtype=np.uint8)
        except Exception as exc:  # unreadable files are reported, never fatal
            skipped.append(f"{p}: {exc}")
            continue
        images.append(img)
        ids.append(p.stem)
    if not images:
        raise LabError(f"none of the {len(files)} images under {root} could be read: {skipped[0]}")
    groups = None
    if groups_csv is not None:
        table = pd.read_csv(groups_csv)
        if table.shape[1] < 2:
            raise LabError(f"{groups_csv}: needs two columns, image id and group")
        mapping = dict(zip(table.iloc[:, 0].astype(str), table.iloc[:, 1].astype(str)))
        groups = np.array([mapping.get(i, f"__own_{i}") for i in ids], dtype=object)
    return np.stack(images), ids, groups, skipped

