"""Build small fixture trees of every ImageCLEF GANs layout, with synthetic uint8 images.

Other tests import it (`from layout_factory import make_layout`). Every image differs (seeded noise
plus its index written into the pixels), so sha256 values and image ids are unique.

    root = make_layout(tmp_path, "2024-st1-dev", n=4)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

LAYOUT_NAMES = (
    "2023-st1-dev",
    "2023-st1-test",
    "2024-st1-dev",
    "2024-st1-test",
    "2025-st1-dev",
    "2025-st1-test",
    "2024-st2-dev",
    "2024-st2-test",
    "2025-st2-dev",
    "2025-st2-test",
)

# Expected counts per (group, role, label) for make_layout(..., n): what load_dataset must report.
MODELS_2024 = ("model_1", "model_2")
FOLDERS_2024 = ("folder_1", "folder_2")
GENERATORS_2024 = ("model_1", "model_2", "model_3")
SUBSETS_2025 = ("subset_a", "subset_b")


def synthetic_slice(seed: int, size: int = 256) -> np.ndarray:
    """A CT-like uint8 slice: a bright disc (body) with two dark lungs and seeded noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    body = ((yy - 0.5) ** 2 / 0.16 + (xx - 0.5) ** 2 / 0.2) < 1
    lungs = (((yy - 0.5) ** 2 / 0.05 + (xx - 0.33) ** 2 / 0.012) < 1) | (((yy - 0.5) ** 2 / 0.05 + (xx - 0.67) ** 2 / 0.012) < 1)
    image = np.where(body, 150.0, 5.0) - np.where(lungs, 110.0, 0.0) + rng.normal(0, 12, (size, size))
    image = np.clip(image, 0, 255).astype(np.uint8)
    image[0, : min(8, size)] = np.frombuffer(int(seed).to_bytes(8, "little"), dtype=np.uint8)[: min(8, size)]
    return image


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _write_many(folder: Path, names: list[str], seed0: int) -> None:
    for offset, name in enumerate(names):
        write_png(folder / f"{name}.png", synthetic_slice(seed0 + offset))


def make_layout(tmp_path: Path, layout: str, n: int = 4, *, name: str | None = None) -> Path:
    """Create a tree of `layout` under tmp_path and return its root. n images per role folder."""
    root = Path(tmp_path) / (name or layout)
    root.mkdir(parents=True, exist_ok=True)
    seed = [1000]

    def fill(folder: Path, names: list[str]) -> None:
        _write_many(folder, names, seed[0])
        seed[0] += len(names)

    idx = range(1, n + 1)
    if layout == "2023-st1-dev":
        fill(root / "generated", [f"generated_{i:04d}" for i in idx])
        fill(root / "used", [f"used_{i:04d}" for i in idx])
        fill(root / "not_used", [f"not_used_{i:04d}" for i in idx])
    elif layout == "2023-st1-test":
        fill(root / "generated_1", [f"generated_{i:05d}" for i in idx])
        fill(root / "real_unknown_1", [f"real_unknown_{i:04d}" for i in idx])
    elif layout == "2024-st1-dev":
        for m, model in enumerate(MODELS_2024, start=1):
            fill(root / model / "generated", [f"generated_{m}_{i:06d}" for i in idx])
            fill(root / model / "real_used", [f"real_used_{m}_{i:06d}" for i in idx])
            fill(root / model / "real_not_used", [f"real_not_used_{m}_{i:06d}" for i in idx])
    elif layout == "2024-st1-test":
        for f, folder in enumerate(FOLDERS_2024, start=1):
            fill(root / folder / "generated", [f"generated_{f}_{i:06d}" for i in idx])
            fill(root / folder / "real_unknown", [f"real_unknown_{f}_{i:06d}" for i in idx])
    elif layout == "2025-st1-dev":
        fill(root / "generated", [f"generated_{i:04d}" for i in idx])
        fill(root / "real_used", [f"real_used_{i:04d}" for i in idx])
        fill(root / "real_not_used", [f"real_not_used_{i:04d}" for i in idx])
    elif layout == "2025-st1-test":
        fill(root / "generated", [f"generated_{i:04d}" for i in idx])
        fill(root / "real_unknown", [f"real_unknown_{i:04d}" for i in idx])
    elif layout == "2024-st2-dev":
        for generator in GENERATORS_2024:
            fill(root / generator, [f"{generator}_{i:04d}" for i in idx])
    elif layout in ("2024-st2-test", "2025-st2-test"):
        fill(root / "generated_unknown", [f"generated_unknown_{i:05d}" for i in range(1, 2 * n + 1)])
    elif layout == "2025-st2-dev":
        for subset in SUBSETS_2025:
            fill(root / "real" / subset, [f"real_{subset}_{i:04d}" for i in idx])
            fill(root / "generated" / subset, [f"generated_{subset}_{i:04d}" for i in idx])
    else:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUT_NAMES)}")
    return root


def expected_counts(layout: str, n: int = 4) -> dict[tuple[str, str, str], int]:
    """(group, role, label) -> count that load_dataset must report for make_layout(layout, n)."""
    if layout == "2023-st1-dev" or layout == "2025-st1-dev":
        return {("", "generated", "unknown"): n, ("", "real", "used"): n, ("", "real", "not_used"): n}
    if layout == "2023-st1-test" or layout == "2025-st1-test":
        return {("", "generated", "unknown"): n, ("", "real", "unknown"): n}
    if layout == "2024-st1-dev":
        return {
            key: n
            for model in MODELS_2024
            for key in ((model, "generated", model), (model, "real", "used"), (model, "real", "not_used"))
        }
    if layout == "2024-st1-test":
        return {key: n for folder in FOLDERS_2024 for key in ((folder, "generated", "unknown"), (folder, "real", "unknown"))}
    if layout == "2024-st2-dev":
        return {(g, "generated", g): n for g in GENERATORS_2024}
    if layout in ("2024-st2-test", "2025-st2-test"):
        return {("generated_unknown", "generated", "unknown"): 2 * n}
    if layout == "2025-st2-dev":
        return {key: n for s in SUBSETS_2025 for key in ((s, "real", s), (s, "generated", s))}
    raise ValueError(layout)


def write_manifest_tree(tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    """An arbitrary tree plus the manifest CSV (path, role, label, group) that describes it."""
    root = Path(tmp_path) / "custom_tree"
    lines = ["path,role,label,group"]
    seed = 5000
    for kind, role, label in (("synth", "generated", "gan_a"), ("train", "real", "used"), ("other", "real", "not_used")):
        for i in range(n):
            relative = f"stuff/{kind}/img_{kind}_{i}.png"
            write_png(root / relative, synthetic_slice(seed))
            seed += 1
            lines.append(f"{relative},{role},{label},g1")
    csv = root / "manifest.csv"
    csv.write_text("\n".join(lines) + "\n")
    return root, csv


# Bad inputs -----------------------------------------------------------------------------------


def write_palette_png(path: Path, seed: int = 1) -> Path:
    gray = synthetic_slice(seed)
    image = Image.fromarray(gray).convert("P")  # grey palette: lossless for grey data
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_rgb_png(path: Path, seed: int = 1, colour: bool = False) -> Path:
    gray = synthetic_slice(seed)
    rgb = np.stack([gray, gray, gray], axis=-1)
    if colour:
        rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + 40, 0, 255).astype(np.uint8)
    return write_png(path, rgb)


def write_16bit_png(path: Path, seed: int = 1) -> tuple[Path, np.ndarray]:
    """A 16-bit PNG whose exact 8-bit rescale is the returned array."""
    gray = synthetic_slice(seed)
    wide = gray.astype(np.uint16) * 257  # 0..255 -> 0..65535 exactly
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(wide).save(path)
    return path, gray


def write_truncated_png(path: Path, seed: int = 1) -> Path:
    write_png(path, synthetic_slice(seed))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image at all" * 10)
    return path


def write_blank_png(path: Path, width: int, height: int, bit_depth: int = 16) -> Path:
    """A grayscale PNG of zeros written row by row (a 12000x12000 16-bit one is about 280 KB on disk
    and never exists in memory here): what a decompression bomb looks like from the outside."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + width * bit_depth // 8)   # filter byte 0, then the samples
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
