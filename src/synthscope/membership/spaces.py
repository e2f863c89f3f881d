"""Feature spaces that membership scores are computed in, and their features through the embedding cache."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


@dataclass(frozen=True)
class Space:
    name: str
    extractor: str
    options: dict
    postprocess: str = "none"   # "none" | "image_zscore" (per image: brightness/contrast invariant)
    description: str = ""


SPACES: dict[str, Space] = {s.name: s for s in (
    Space("pixels", "pixels", {"size": 64}, "none", "64 px grey levels in 0..1"),
    Space("pixels-norm", "pixels", {"size": 64}, "image_zscore",
          "64 px, each image standardised to zero mean / unit norm: insensitive to brightness and contrast"),
    Space("pixels-lung", "pixels", {"size": 64, "mask": "lung"}, "image_zscore",
          "64 px inside the lung mask, standardised per image"),
    Space("pixels-32", "pixels", {"size": 32}, "image_zscore", "32 px, standardised per image"),
    Space("pixels-128", "pixels", {"size": 128}, "image_zscore",
          "128 px, standardised per image (finer texture; the best single space on v2's dev folder)"),
    Space("fingerprint", "fingerprint", {}, "image_zscore",
          "generator-fingerprint features (noise residual spectrum), standardised per image"),
    Space("effnet-lite0", "effnet-lite0", {}, "none", "ImageNet EfficientNet-Lite0 embedding (L2-normalised)"),
    Space("astra-ct", "astra-ct", {}, "none", "chest-CT ResNet-152 embedding (L2-normalised)"),
)}


DEFAULT_SPACES = ("pixels-norm", "pixels-128", "pixels-lung", "fingerprint")


def get_space(name: str) -> Space:
    if name not in SPACES:
        raise ValueError(f"unknown space {name!r}; choose from {', '.join(SPACES)}")
    return SPACES[name]


def postprocess(features: np.ndarray, how: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if how == "none":
        return features
    if how == "image_zscore":
        centred = features - features.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(centred, axis=1, keepdims=True)
        return centred / np.maximum(norm, 1e-6)
    raise ValueError(f"unknown postprocess {how!r}")


def space_features(images: np.ndarray, space: str | Space, *, cache=None, keys=None,
                   device: str = "auto") -> np.ndarray:
    """Features of uint8 images [n, H, W] in one space (through the embedding cache)."""
    from synthscope.cache import embed_arrays
    from synthscope.features import get_extractor

    space = get_space(space) if isinstance(space, str) else space
    extractor = get_extractor(space.extractor, **space.options)
    raw = embed_arrays(np.asarray(images), extractor, cache=cache, keys=keys, device=device)
    return postprocess(raw, space.postprocess)


def dataset_space_features(dataset, space: str | Space, *, cache=None, device: str = "auto",
                           progress: bool = False) -> np.ndarray:
    """Features of every manifest row of a Dataset in one space (row-aligned; cached by sha256)."""
    from synthscope.cache import embed_dataset
    from synthscope.features import get_extractor

    space = get_space(space) if isinstance(space, str) else space
    extractor = get_extractor(space.extractor, **space.options)
    raw = embed_dataset(dataset, extractor, cache=cache, device=device, progress=progress)
    return postprocess(raw, space.postprocess)



def dataset_space_rows(dataset, space: str | Space, *, cache=None, device: str = "auto", progress: bool = False,
                       chunk: int | None = None):
    """Like `dataset_space_features`, but lazy: every row is embedded into the cache (what `synthscope embed`
    does, in memory bounded by its chunk), and a `FeatureRows` reads them back `chunk` rows at a time,
    post-processed per chunk (row by row, so the values are those of `dataset_space_features`)."""
    from synthscope.cache import EmbeddingCache, _resolve_extractor, cache_dataset, dataset_keys
    from synthscope.features import get_extractor
    from synthscope.membership.rows import GENERATED_CHUNK, FeatureRows

    space = get_space(space) if isinstance(space, str) else space
    extractor = _resolve_extractor(get_extractor(space.extractor, **space.options), device)
    cache = cache or EmbeddingCache()
    cache_dataset(dataset, extractor, cache=cache, device=device, progress=progress)
    return FeatureRows.from_cache(cache, extractor, dataset_keys(dataset),
                                  lambda vectors: postprocess(vectors, space.postprocess),
                                  dim=cache.dimension(extractor),
                                  chunk=GENERATED_CHUNK if chunk is None else chunk)
