"""Decoding: every image becomes uint8 [256, 256]; odd inputs are converted or refused with a reason."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from layout_factory import (
    synthetic_slice,
    write_16bit_png,
    write_garbage,
    write_palette_png,
    write_png,
    write_rgb_png,
    write_truncated_png,
)
from synthscope.imageio import (
    ImageConversionWarning,
    ImageReadError,
    decode_image_bytes,
    load_images,
    read_image,
)


def test_gray_png_round_trips_exactly(tmp_path):
    original = synthetic_slice(3)
    path = write_png(tmp_path / "a.png", original)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = read_image(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (256, 256)
    np.testing.assert_array_equal(decoded, original)


def test_palette_png_is_converted_to_its_gray_values(tmp_path):
    path = write_palette_png(tmp_path / "p.png", seed=4)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_image(path), synthetic_slice(4))
    assert decode_image_bytes(path.read_bytes()).notes == ["palette"]


def test_gray_rgb_is_converted_silently(tmp_path):
    path = write_rgb_png(tmp_path / "g.png", seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(path), synthetic_slice(5))


def test_colour_rgb_is_converted_with_a_warning(tmp_path):
    path = write_rgb_png(tmp_path / "c.png", seed=6, colour=True)
    with pytest.warns(ImageConversionWarning, match="colour"):
        decoded = read_image(path)
    assert decoded.shape == (256, 256)
    # Luma of (g+40, g, g) lies between g and g+40: the red shift shows up only partly.
    gray = synthetic_slice(6).astype(int)
    assert np.all(decoded.astype(int) >= gray - 1) and np.any(decoded.astype(int) > gray)


def test_sixteen_bit_is_rescaled_to_eight_bits(tmp_path):
    path, expected = write_16bit_png(tmp_path / "w.png", seed=7)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(read_image(path), expected)
    assert "16bit" in decode_image_bytes(path.read_bytes()).notes


def test_twelve_bit_data_in_sixteen_bits_warns_that_it_is_dark(tmp_path):
    values = (synthetic_slice(2).astype(np.uint16) * 16)  # 0..4080, as 12-bit CT stored in 16 bits
    Image.fromarray(values).save(tmp_path / "ct12.png")
    with pytest.warns(ImageConversionWarning, match="very dark"):
        decoded = read_image(tmp_path / "ct12.png")
    assert decoded.max() <= 16


def test_rgba_and_gray_alpha_drop_alpha(tmp_path):
    gray = synthetic_slice(8)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    np.testing.assert_array_equal(read_image(write_png(tmp_path / "rgba.png", rgba)), gray)
    la = Image.fromarray(gray).convert("LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), gray)


def test_wrong_size_is_refused_by_default_and_named(tmp_path):
    path = write_png(tmp_path / "small.png", synthetic_slice(9, size=128))
    with pytest.raises(ImageReadError, match=r"small\.png: size 128x128 is not 256x256.*resize"):
        read_image(path)


def test_resize_policy_resizes(tmp_path):
    path = write_png(tmp_path / "big.png", np.full((512, 512), 77, dtype=np.uint8))
    with pytest.warns(ImageConversionWarning, match="resized"):
        decoded = read_image(path, size_policy="resize")
    assert decoded.shape == (256, 256)
    assert np.all(decoded == 77)


def test_center_crop_keeps_the_pixel_grid_and_pads_small_images(tmp_path):
    big = np.arange(300 * 280, dtype=np.int64).reshape(300, 280) % 251
    path = write_png(tmp_path / "big.png", big.astype(np.uint8))
    with pytest.warns(ImageConversionWarning):
        decoded = read_image(path, size_policy="center_crop")
    np.testing.assert_array_equal(decoded, big[22:278, 12:268].astype(np.uint8))

    small = np.full((200, 256), 9, dtype=np.uint8)
    with pytest.warns(ImageConversionWarning):
        padded = read_image(write_png(tmp_path / "short.png", small), size_policy="center_crop")
    assert padded.shape == (256, 256)
    assert np.all(padded[28:228] == 9) and np.all(padded[:28] == 0) and np.all(padded[228:] == 0)


def test_unknown_size_policy_is_an_error(tmp_path):
    path = write_png(tmp_path / "a.png", synthetic_slice(1))
    with pytest.raises(ValueError, match="size_policy"):
        read_image(path, size_policy="stretch")


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: write_truncated_png(p), "corrupt"),
        (lambda p: write_garbage(p), "not a readable image"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_unreadable_files_raise_with_the_path_and_reason(tmp_path, make, reason):
    path = make(tmp_path / "bad.png")
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert info.value.path == str(path)


def test_missing_file_is_an_image_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="cannot read file"):
        read_image(tmp_path / "nope.png")


def test_load_images_keeps_order_and_names_the_bad_file(tmp_path):
    paths = [write_png(tmp_path / f"{i}.png", synthetic_slice(i)) for i in range(20)]
    stacked = load_images(paths)
    assert stacked.shape == (20, 256, 256) and stacked.dtype == np.uint8
    for i in (0, 7, 19):
        np.testing.assert_array_equal(stacked[i], synthetic_slice(i))
    bad = write_garbage(tmp_path / "bad.png")
    with pytest.raises(ImageReadError, match="bad.png"):
        load_images(paths[:10] + [bad] + paths[10:])


def test_load_images_of_nothing_is_empty():
    assert load_images([]).shape == (0, 256, 256)


# Decompression bombs -------------------------------------------------------------------------

_PEAK_SCRIPT = """
import resource, sys, warnings
warnings.simplefilter("ignore")
from synthscope.imageio import ImageReadError, read_image_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_image_file(sys.argv[1], sys.argv[2])
    print("decoded")
except ImageReadError as error:
    print("refused:", error.reason)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    from layout_factory import write_blank_png

    path = write_blank_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 12000, 12000, bit_depth=16)
    assert path.stat().st_size < 400_000   # 280 KB on disk, 288 MB of 16-bit pixels, 3.5 GB as it used to decode
    return path


@pytest.mark.parametrize("policy", ["error", "resize", "center_crop"])
def test_a_decompression_bomb_is_refused_from_its_header(bomb, policy):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(bomb), policy], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": os.pathsep.join(sys.path), "PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr
    verdict, peak_mb = done.stdout.splitlines()
    assert verdict.startswith("refused: 12000x12000 pixels (144 megapixels) is more than the 4.2 megapixels"), verdict
    assert "not decoded" in verdict
    assert float(peak_mb) < 20, f"peak RSS grew by {peak_mb} MB (it was 3,574 MB before the header check)"


def test_the_header_check_never_decodes(bomb, monkeypatch):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    odd = write_png(bomb.parent / "odd.png", np.zeros((300, 280), np.uint8))
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for policy in ("error", "resize"):
        with pytest.raises(ImageReadError, match="not decoded"):
            decode_image_bytes(bomb.read_bytes(), "bomb.png", policy)
    # under "error" a wrong size is known from the header too, without decoding
    with pytest.raises(ImageReadError, match="size 280x300 is not 256x256") as caught:
        read_image(odd)
    assert caught.value.kind == "size"


def test_a_bomb_in_a_data_folder_is_skipped_with_its_reason(bomb, tmp_path):
    import shutil

    from synthscope.data import load_dataset

    root = tmp_path / "st2"
    for i in range(3):
        write_png(root / "generated_unknown" / f"g{i}.png", synthetic_slice(i))
    shutil.copy(bomb, root / "generated_unknown" / "g9.png")
    for policy in ("error", "resize"):
        dataset = load_dataset(root, size_policy=policy)
        assert len(dataset.manifest) == 3
        (skipped,) = dataset.report.skipped
        assert skipped.path.endswith("g9.png") and "not decoded" in skipped.reason
