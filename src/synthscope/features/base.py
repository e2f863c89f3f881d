"""The extractor interface and the registry that the CLI, notebooks and dashboard list and choose from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


class ExtractorUnavailable(RuntimeError):
    """The extractor cannot run here (missing package or weights); the message says what to install."""


class Extractor:
    """Turns a batch of uint8 grayscale images [n, H, W] into float32 features [n, d].

    Subclasses set `name`, implement `transform`, and return every setting that changes the output
    from `config()` (plus the sha256 of any weights file), since the cache is keyed by it.
    """

    name: str = "extractor"
    #: images per call that keeps memory bounded; the cache driver batches by it
    default_batch_size: int = 64

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def transform(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config_key(self) -> str:
        """A short stable hash of `config()`, used as the cache namespace."""
        payload = json.dumps({"name": self.name, **self.config()}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config()})"


@dataclass(frozen=True)
class ExtractorInfo:
    name: str
    available: bool
    reason: str          # why it is unavailable, or where its weights come from
    description: str


@dataclass(frozen=True)
class _Registration:
    factory: Callable[..., Extractor]
    description: str
    check: Callable[[], str | None]   # returns None when available, else the reason


_REGISTRY: dict[str, _Registration] = {}


def register_extractor(
    name: str, description: str, check: Callable[[], str | None] | None = None
) -> Callable[[Callable[..., Extractor]], Callable[..., Extractor]]:
    """Decorator: register a factory under `name`. `check()` tells whether it can run here."""

    def decorate(factory: Callable[..., Extractor]) -> Callable[..., Extractor]:
        _REGISTRY[name] = _Registration(factory, description, check or (lambda: None))
        return factory

    return decorate


def get_extractor(name: str, **options: Any) -> Extractor:
    if name not in _REGISTRY:
        raise KeyError(f"unknown extractor {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    registration = _REGISTRY[name]
    reason = registration.check()
    if reason is not None:
        raise ExtractorUnavailable(f"extractor {name!r} is not available here: {reason}")
    return registration.factory(**options)


def list_extractors() -> list[ExtractorInfo]:
    infos = []
    for name, registration in sorted(_REGISTRY.items()):
        reason = registration.check()
        infos.append(ExtractorInfo(name, reason is None, reason or "", registration.description))
    return infos


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
