"""The extractor interface and the registry that the CLI, notebooks and dashboard list and choose from."""

from __future__ import annotations

import hashlib
import inspect
import numbers
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
    options: Callable[..., Any] | None = None   # whose signature names the options and their defaults


_OPTION_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def check_options(name: str, target: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """Options for extractor `name` checked against `target`'s signature: an unknown name, or a value
    whose type does not match the default's (text for a number, say), is a ValueError naming the option,
    the value and what it should be. Integral floats become ints; the checked options are returned."""
    signature = inspect.signature(target)
    known = {key: p for key, p in signature.parameters.items() if key != "self" and p.kind in _OPTION_KINDS}
    open_ended = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    checked = {}
    for key, value in options.items():
        if key not in known:
            if open_ended:
                checked[key] = value
                continue
            raise ValueError(f"extractor {name!r} has no option {key!r}; its options: {', '.join(known) or 'none'}")
        default = known[key].default
        wanted = type(default) if default is not inspect.Parameter.empty and default is not None else None
        problem = None
        if wanted is bool:
            if not isinstance(value, bool):
                problem = "true or false"
        elif wanted is int:
            if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and float(value).is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                problem = "an integer"
            else:
                value = int(value)
        elif wanted is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                problem = "a number"
            else:
                value = float(value)
        elif wanted is str and not isinstance(value, str):
            problem = "text"
        if problem:
            raise ValueError(f"extractor {name!r}: option {key}={value!r} must be {problem} (default {default!r})")
        checked[key] = value
    return checked


#: side of every image synthscope reads (imageio.IMAGE_SIZE); extractor options that scale with the
#: image are bounded by it, so a typo such as size=50000 is one clear error instead of 9 GiB of memory
IMAGE_SIDE = 256


def check_bounds(extractor: str, option: str, value: float, low: float, high: float, why: str = "") -> None:
    """A ValueError naming the extractor, the option and its range when `value` is outside [low, high]."""
    if not low <= value <= high:
        raise ValueError(f"extractor {extractor!r}: option {option}={value!r} must be between {low} and {high}"
                         + (f" ({why})" if why else ""))


_REGISTRY: dict[str, _Registration] = {}


def register_extractor(
    name: str, description: str, check: Callable[[], str | None] | None = None,
    options: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Extractor]], Callable[..., Extractor]]:
    """Decorator: register a factory under `name`. `check()` tells whether it can run here; `options`
    (usually the extractor class) is whose signature names the options, when the factory takes **options."""

    def decorate(factory: Callable[..., Extractor]) -> Callable[..., Extractor]:
        _REGISTRY[name] = _Registration(factory, description, check or (lambda: None), options)
        return factory

    return decorate


def get_extractor(name: str, **options: Any) -> Extractor:
    if name not in _REGISTRY:
        raise KeyError(f"unknown extractor {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    registration = _REGISTRY[name]
    reason = registration.check()
    if reason is not None:
        raise ExtractorUnavailable(f"extractor {name!r} is not available here: {reason}")
    options = check_options(name, registration.options or registration.factory, options)
    try:
        extractor = registration.factory(**options)
    except TypeError as error:   # a value the signature could not type-check (e.g. a list where a pair is due)
        raise ValueError(f"extractor {name!r} cannot use the options {options}: {error}") from None
    # how to build it again elsewhere: a Dask worker rebuilds it from this instead of receiving its weights
    extractor.registry_spec = (name, dict(options))
    return extractor


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
