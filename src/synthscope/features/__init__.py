"""Feature extractors behind one registry: `get_extractor(name)`, `list_extractors()`."""

from synthscope.features.base import (
    Extractor,
    ExtractorInfo,
    ExtractorUnavailable,
    get_extractor,
    list_extractors,
    register_extractor,
)

__all__ = [
    "Extractor",
    "ExtractorInfo",
    "ExtractorUnavailable",
    "get_extractor",
    "list_extractors",
    "register_extractor",
]
