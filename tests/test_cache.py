"""The embedding cache: hits, misses, invalidation by content, corruption detection, merging."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from float_tolerance import float32_sum_rtol
from synthscope.cache import (
    MAX_SHARDS,
    CacheCorruptionWarning,
    CacheStats,
    EmbeddingCache,
    array_sha256,
    default_cache_dir,
    embed_arrays,
    embed_dataset,
)
from synthscope.data import load_dataset
from synthscope.features.texture import PixelsExtractor


#: pixels(size=32) of a 256x256 slice: float32 means of 8x8 = 64 values in 0..1, in a batch-dependent order
BLOCK_MEAN_ATOL = float32_sum_rtol(64)


class CountingPixels(PixelsExtractor):
    """The `pixels` extractor, counting how many images it was asked to compute."""

    def __init__(self, **options):
        super().__init__(**options)
        self.n_transformed = 0

    def transform(self, images):
        self.n_transformed += len(images)
        return super().transform(images)


def _tree(root: Path, sources: list[Path], start: int = 0) -> Path:
    """A 2025 sub-task 1 dev tree (generated/, real_used/, real_not_used/) of real CT slices."""
    folders = ("generated", "real_used", "real_not_used")
    for offset, source in enumerate(sources):
        folder = root / folders[(start + offset) % 3]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / f"{folder.name}_{start + offset:04d}.png")
    return root


@pytest.fixture
def real_pngs(iqoth_dir) -> list[Path]:
    return [iqoth_dir / f"real_{i:04d}.png" for i in range(1, 41)]


def test_default_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHSCOPE_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    assert EmbeddingCache().root == tmp_path / "elsewhere" / "embeddings"
    monkeypatch.delenv("SYNTHSCOPE_CACHE_DIR")
    assert "synthscope" in str(default_cache_dir())


def test_second_run_computes_nothing_and_new_images_only_themselves(tmp_path, real_pngs):
    data = _tree(tmp_path / "data", real_pngs[:30])
    cache = EmbeddingCache(tmp_path / "cache")
    extractor = CountingPixels(size=32)
    stats = CacheStats()
    first = embed_dataset(load_dataset(data), extractor, cache=cache, progress=False, stats=stats)
    assert extractor.n_transformed == 30 and stats.n_computed == 30 and stats.n_cached == 0
    dataset = load_dataset(data)
    np.testing.assert_array_equal(first, extractor.__class__(size=32).transform(dataset.images()))

    again = embed_dataset(load_dataset(data), extractor, cache=cache, progress=False, stats=stats)
    assert extractor.n_transformed == 30 and stats.n_computed == 0 and stats.n_cached == 30
    np.testing.assert_array_equal(again, first)

    _tree(data, real_pngs[30:40], start=30)
    grown = load_dataset(data)
    vectors = embed_dataset(grown, extractor, cache=cache, progress=False, stats=stats)
    assert extractor.n_transformed == 40 and stats.n_computed == 10
    np.testing.assert_allclose(vectors, PixelsExtractor(size=32).transform(grown.images()), rtol=0, atol=BLOCK_MEAN_ATOL)

    # Another extractor config is another namespace: nothing is shared.
    other = CountingPixels(size=16)
    embed_dataset(grown, other, cache=cache, progress=False)
    assert other.n_transformed == 40


def test_changed_file_is_recomputed_renamed_file_is_not(tmp_path, real_pngs):
    data = _tree(tmp_path / "data", real_pngs[:9])
    cache = EmbeddingCache(tmp_path / "cache")
    extractor = CountingPixels(size=32)
    embed_dataset(load_dataset(data), extractor, cache=cache, progress=False)
    assert extractor.n_transformed == 9

    target = data / "generated" / "generated_0000.png"
    target.rename(data / "generated" / "generated_0100.png")
    stats = CacheStats()
    embed_dataset(load_dataset(data), extractor, cache=cache, progress=False, stats=stats)
    assert extractor.n_transformed == 9 and stats.n_computed == 0

    changed = data / "real_used" / "real_used_0001.png"
    pixels = np.asarray(Image.open(changed).convert("L")).copy()
    pixels[:16, :16] = 255 - pixels[:16, :16]
    Image.fromarray(pixels).save(changed)
    dataset = load_dataset(data)
    vectors = embed_dataset(dataset, extractor, cache=cache, progress=False, stats=stats)
    assert extractor.n_transformed == 10 and stats.n_computed == 1
    row = int(np.flatnonzero(dataset.manifest["image_id"] == "real_used_0001")[0])
    np.testing.assert_allclose(vectors[row], PixelsExtractor(size=32).transform(pixels[None])[0], rtol=0, atol=BLOCK_MEAN_ATOL)


def test_duplicate_content_is_computed_once_and_rows_stay_aligned(tmp_path, ct_stack):
    images = np.concatenate([ct_stack[:5], ct_stack[:2]])
    extractor = CountingPixels(size=32)
    vectors = embed_arrays(images, extractor, cache=EmbeddingCache(tmp_path))
    assert extractor.n_transformed == 5
    np.testing.assert_array_equal(vectors[5:], vectors[:2])
    assert len({array_sha256(image) for image in images}) == 5


@pytest.fixture
def ct_stack(real_pngs) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("L")) for p in real_pngs[:12]])


def _only_shard(cache: EmbeddingCache, extractor) -> tuple[Path, Path]:
    directory = cache.namespace(extractor)
    (npy,) = directory.glob("shard-*.npy")
    return npy, npy.with_suffix(".json")


def _damage_truncate(npy: Path, index: Path) -> None:
    npy.write_bytes(npy.read_bytes()[:-1000])


def _damage_flip(npy: Path, index: Path) -> None:
    data = bytearray(npy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one wrong byte inside a vector
    npy.write_bytes(bytes(data))


def _damage_index(npy: Path, index: Path) -> None:
    index.write_text(index.read_text()[: len(index.read_text()) // 2])


def _damage_missing(npy: Path, index: Path) -> None:
    npy.unlink()


def _damage_rows(npy: Path, index: Path) -> None:
    meta = json.loads(index.read_text())
    meta["keys"] = meta["keys"][:-1]
    index.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_flip, _damage_index, _damage_missing, _damage_rows])
def test_corrupt_cache_is_reported_and_rebuilt(tmp_path, ct_stack, damage):
    extractor = CountingPixels(size=32)
    expected = embed_arrays(ct_stack, extractor, cache=EmbeddingCache(tmp_path))
    damage(*_only_shard(EmbeddingCache(tmp_path), extractor))

    with pytest.warns(CacheCorruptionWarning, match="corrupt"):
        rebuilt = embed_arrays(ct_stack, extractor, cache=EmbeddingCache(tmp_path))
    assert extractor.n_transformed == 2 * len(ct_stack)
    np.testing.assert_array_equal(rebuilt, expected)
    # The rebuilt cache is whole again: a fresh reader computes nothing and warns about nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        np.testing.assert_array_equal(embed_arrays(ct_stack, extractor, cache=EmbeddingCache(tmp_path)), expected)
    assert extractor.n_transformed == 2 * len(ct_stack)


def test_shards_are_appended_then_merged_without_loss(tmp_path):
    cache = EmbeddingCache(tmp_path)
    extractor = PixelsExtractor(size=4)
    rng = np.random.default_rng(0)
    keys, vectors = [], []
    for step in range(MAX_SHARDS + 1):
        batch_keys = [f"{step:02d}-{i}" for i in range(3)]
        batch = rng.random((3, 16), dtype=np.float32)
        cache.add(extractor, batch_keys, batch)
        keys += batch_keys
        vectors.append(batch)
        n_shards = len(list(cache.namespace(extractor).glob("shard-*.npy")))
        assert n_shards == (step + 1 if step < MAX_SHARDS else 1)
    found, got = EmbeddingCache(tmp_path).lookup(extractor, keys[::-1])
    assert found.all()
    np.testing.assert_array_equal(got, np.concatenate(vectors)[::-1])
    assert not list(cache.namespace(extractor).glob("*.tmp")) and not list(cache.namespace(extractor).glob(".*"))
    config = json.loads((cache.namespace(extractor) / "config.json").read_text())
    assert config == {"name": "pixels", "config": {"size": 4, "mask": "none"}}


def test_lookup_reports_what_is_missing(tmp_path):
    cache = EmbeddingCache(tmp_path)
    extractor = PixelsExtractor(size=4)
    found, vectors = cache.lookup(extractor, ["a", "b"])
    assert not found.any() and vectors is None
    cache.add(extractor, ["a"], np.ones((1, 16), np.float32))
    found, vectors = cache.lookup(extractor, ["b", "a", "a"])
    assert found.tolist() == [False, True, True]
    np.testing.assert_array_equal(vectors[1:], 1.0)
    np.testing.assert_array_equal(vectors[0], 0.0)


def test_bad_vectors_are_refused(tmp_path):
    cache = EmbeddingCache(tmp_path)
    extractor = PixelsExtractor(size=4)
    with pytest.raises(ValueError, match="non-finite"):
        cache.add(extractor, ["a"], np.full((1, 16), np.nan, np.float32))
    with pytest.raises(ValueError, match="expected vectors"):
        cache.add(extractor, ["a", "b"], np.ones((1, 16), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        embed_arrays(np.zeros((2, 8, 8), np.float32), extractor, cache=cache)


def test_embed_dataset_by_name_uses_the_registry(tmp_path, real_pngs):
    dataset = load_dataset(_tree(tmp_path / "data", real_pngs[:6]))
    vectors = embed_dataset(dataset, "lbp", cache=EmbeddingCache(tmp_path / "cache"), progress=False)
    assert vectors.shape == (6, 54)
    np.testing.assert_allclose(vectors[:, :10].sum(axis=1), 1.0, rtol=1e-5)


def test_a_shard_merged_away_by_another_process_is_not_corruption(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    extractor = PixelsExtractor(size=4)
    for step in range(3):
        cache.add(extractor, [f"k{step}"], np.full((1, 16), step, np.float32))
    directory = cache.namespace(extractor)
    stale = cache._read_shards(directory)
    cache._merge(directory, stale)  # what a concurrent writer does between our listing and our reads
    reader = EmbeddingCache(tmp_path)
    listings = iter([stale])
    real_read = reader._read_shards
    monkeypatch.setattr(reader, "_read_shards", lambda d: next(listings, None) or real_read(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        found, vectors = reader.lookup(extractor, ["k0", "k1", "k2"])
    assert found.all()
    np.testing.assert_array_equal(vectors[:, 0], [0, 1, 2])


def test_progress_callback_counts_computed_images_only(tmp_path, ct_stack):
    calls = []
    cache = EmbeddingCache(tmp_path)
    embed_arrays(ct_stack, PixelsExtractor(size=32), cache=cache, batch_size=5,
                 progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 12), (5, 12), (10, 12), (12, 12)]
    calls.clear()
    embed_arrays(ct_stack, PixelsExtractor(size=32), cache=cache, progress=lambda *a: calls.append(a))
    assert calls == []                                  # all cached: nothing to report


def test_size_policy_is_part_of_the_key(tmp_path, real_pngs):
    """After `resize`, a `center_crop` run used to reuse the resized vectors: same file, same sha256."""
    data = _tree(tmp_path / "data", real_pngs[:3])
    odd = data / "generated" / "generated_0000.png"
    Image.open(real_pngs[0]).convert("L").resize((320, 300)).save(odd)   # not 256x256
    cache = EmbeddingCache(tmp_path / "cache")
    extractor = CountingPixels(size=32)
    by_policy, stats = {}, CacheStats()
    for policy in ("resize", "center_crop"):
        dataset = load_dataset(data, size_policy=policy)
        by_policy[policy] = embed_dataset(dataset, extractor, cache=cache, progress=False, stats=stats)
        assert stats.n_computed == 3, policy   # nothing reused across policies
        np.testing.assert_array_equal(by_policy[policy], PixelsExtractor(size=32).transform(dataset.images()))
    row = int(np.flatnonzero(dataset.manifest["image_id"] == "generated_0000")[0])
    assert np.abs(by_policy["resize"][row] - by_policy["center_crop"][row]).max() > 0.05
    again = embed_dataset(load_dataset(data, size_policy="resize"), extractor, cache=cache, progress=False, stats=stats)
    assert stats.n_computed == 0 and np.array_equal(again, by_policy["resize"])   # each policy is cached
    from synthscope.cache import pixel_key

    sha = dataset.manifest["sha256"].iloc[row]
    assert len({pixel_key(sha, p) for p in ("error", "resize", "center_crop")}) == 3 and pixel_key(sha) == sha


@pytest.mark.parametrize("step", ["checksum", "load"])
def test_a_shard_merged_away_while_it_is_read_is_neither_corrupt_nor_fatal(tmp_path, monkeypatch, step):
    """Another process merges (and deletes) the very shard this reader has begun to open: between its
    stat and its checksum, or between its checksum and np.load. It used to be reported as corrupt
    ('not a valid .npy file ... No such file') or to raise FileNotFoundError."""
    import synthscope.cache as cache_module

    writer = EmbeddingCache(tmp_path)
    extractor = PixelsExtractor(size=4)
    for n in range(3):
        writer.add(extractor, [f"k{n}"], np.full((1, 16), n, np.float32))
    directory = writer.namespace(extractor)
    merged = []

    def merge_first(real):
        def wrapped(*args, **kwargs):
            if not merged:
                merged.append(True)
                writer._merge(directory, writer._read_shards(directory))   # the other process, right now
            return real(*args, **kwargs)
        return wrapped

    if step == "checksum":
        monkeypatch.setattr(cache_module, "_crc32_file", merge_first(cache_module._crc32_file))
    else:
        monkeypatch.setattr(cache_module.np, "load", merge_first(np.load))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        found, vectors = EmbeddingCache(tmp_path).lookup(extractor, ["k0", "k1", "k2"])
    assert merged and found.all()
    np.testing.assert_array_equal(vectors[:, 0], [0, 1, 2])


_WRITER_SCRIPT = """
import sys, warnings
import numpy as np
from synthscope.cache import CacheCorruptionWarning, EmbeddingCache
from synthscope.features.texture import PixelsExtractor
root, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache, extractor = EmbeddingCache(root), PixelsExtractor(size=4)
warnings.simplefilter("error", CacheCorruptionWarning)
for i in range(n):   # one shard per add: a merge every 16 adds, racing the other process's reads and merges
    keys = [f"{tag}-{i}-{j}" for j in range(3)]
    cache.add(extractor, keys, np.full((3, 16), i, np.float32))
    assert cache.lookup(extractor, keys)[0].all()
print("ok")
"""


def test_two_processes_adding_and_merging_at_once_report_nothing_and_lose_nothing(tmp_path):
    import os
    import subprocess
    import sys

    env = {"PYTHONPATH": os.pathsep.join(sys.path), "PATH": os.environ.get("PATH", "")}
    workers = [subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT, str(tmp_path), tag, "150"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in "ab"]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0 and out.strip() == "ok", err[-2000:]
    keys = [f"{tag}-{i}-{j}" for tag in "ab" for i in range(150) for j in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        found, vectors = EmbeddingCache(tmp_path).lookup(PixelsExtractor(size=4), keys)
    assert found.all()
    np.testing.assert_array_equal(vectors[:, 0], [i for _ in "ab" for i in range(150) for _ in range(3)])


def _flip_a_key_byte(index: Path) -> None:
    """One flipped bit inside a key: still valid JSON, so only a checksum of the index can tell."""
    data = bytearray(index.read_bytes())
    position = data.index(b'"keys": ["') + len(b'"keys": ["') + 5
    data[position] ^= 0x01
    index.write_bytes(bytes(data))


def test_a_flipped_byte_in_an_index_is_reported_and_only_that_shard_rebuilt(tmp_path, ct_stack):
    extractor = CountingPixels(size=32)
    first, second = ct_stack[:5], ct_stack[5:]
    embed_arrays(first, extractor, cache=EmbeddingCache(tmp_path))
    embed_arrays(second, extractor, cache=EmbeddingCache(tmp_path))
    directory = EmbeddingCache(tmp_path).namespace(extractor)
    shards = sorted(directory.glob("shard-*.json"))
    assert len(shards) == 2 and json.loads(shards[0].read_text())["keys"][0] == array_sha256(first[0])
    _flip_a_key_byte(shards[0])
    stats = CacheStats()
    with pytest.warns(CacheCorruptionWarning, match="index checksum mismatch"):
        vectors = embed_arrays(ct_stack, extractor, cache=EmbeddingCache(tmp_path), stats=stats)
    assert stats.n_computed == len(first) and stats.n_cached == len(second)   # the other shard is kept
    np.testing.assert_array_equal(vectors, PixelsExtractor(size=32).transform(ct_stack))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        embed_arrays(ct_stack, extractor, cache=EmbeddingCache(tmp_path), stats=stats)
    assert stats.n_computed == 0


def test_a_version_1_index_is_not_trusted_a_swapped_key_is_recomputed_not_served(tmp_path):
    """Issue 23 item 9: version-1 indexes carry no checksum, so a key list damaged in one (here two keys
    swapped) used to serve each image the other's vector silently. They are now warned about, removed
    and recomputed."""
    extractor = CountingPixels(size=4)
    images = np.stack([np.full((8, 8), 10, np.uint8), np.full((8, 8), 200, np.uint8)])
    expected = embed_arrays(images, extractor, cache=EmbeddingCache(tmp_path))
    assert not np.array_equal(expected[0], expected[1])
    (index,) = EmbeddingCache(tmp_path).namespace(extractor).glob("shard-*.json")
    meta = json.loads(index.read_text())
    del meta["index_crc32"]
    meta["version"] = 1
    meta["keys"] = meta["keys"][::-1]          # what a damaged (or hand-edited) v1 index holds
    index.write_text(json.dumps(meta))

    with pytest.warns(CacheCorruptionWarning, match="version-1 index has no checksum"):
        served = embed_arrays(images, extractor, cache=EmbeddingCache(tmp_path))
    np.testing.assert_array_equal(served, expected)
    assert extractor.n_transformed == 2 * len(images)          # recomputed, not read from the v1 shard
    assert not index.exists()
    with warnings.catch_warnings():                              # the rewritten cache is version 2 and trusted
        warnings.simplefilter("error", CacheCorruptionWarning)
        np.testing.assert_array_equal(embed_arrays(images, extractor, cache=EmbeddingCache(tmp_path)), expected)
    assert extractor.n_transformed == 2 * len(images)


def test_a_merge_leaves_big_shards_alone_and_writes_bounded_ones(tmp_path, monkeypatch):
    """At a million images a merge may neither rewrite the whole namespace nor hold it in memory: shards
    of MERGED_SHARD_BYTES or more are left as they are, small ones merge into shards of at most that size."""
    import synthscope.cache as cache_module

    shard_bytes = 3 * 16 * 4                      # 3 rows of 16 float32
    monkeypatch.setattr(cache_module, "MERGED_SHARD_BYTES", 2 * shard_bytes)
    cache = EmbeddingCache(tmp_path)
    extractor = PixelsExtractor(size=4)
    big_keys = [f"big-{i}" for i in range(6)]
    cache.add(extractor, big_keys, np.arange(6 * 16, dtype=np.float32).reshape(6, 16))
    (big,) = cache.namespace(extractor).glob("shard-*.npy")
    rng = np.random.default_rng(1)
    keys, vectors = list(big_keys), [np.arange(6 * 16, dtype=np.float32).reshape(6, 16)]
    for step in range(MAX_SHARDS + 1):
        batch_keys = [f"{step:02d}-{i}" for i in range(3)]
        batch = rng.random((3, 16), dtype=np.float32)
        cache.add(extractor, batch_keys, batch)
        keys += batch_keys
        vectors.append(batch)
    shards = sorted(cache.namespace(extractor).glob("shard-*.npy"))
    assert big in shards                                       # not rewritten
    assert all(path.stat().st_size - 128 <= 2 * shard_bytes for path in shards if path != big)
    assert len(shards) == 1 + (MAX_SHARDS + 1 + 1) // 2
    found, got = EmbeddingCache(tmp_path).lookup(extractor, keys)
    assert found.all()
    np.testing.assert_array_equal(got, np.concatenate(vectors))
