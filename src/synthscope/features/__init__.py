"""Feature extractors behind one registry: `get_extractor(name)`, `list_extractors()`.

Importing this package registers every extractor: `lbp`, `pixels` (texture), `open_clip`,
`effnet-lite0`, `astra-ct` (open_clip_models) and `fingerprint`.
"""

from synthscope.features.base import (
    Extractor,
    ExtractorInfo,
    ExtractorUnavailable,
    get_extractor,
    list_extractors,
    register_extractor,
)
from synthscope.features import texture  # noqa: F401  (registers lbp, pixels)
from synthscope.features import open_clip_models  # noqa: F401  (registers open_clip, effnet-lite0, astra-ct)
from synthscope.features import fingerprint  # noqa: F401  (registers fingerprint; owned by attribution)

__all__ = [
    "Extractor",
    "ExtractorInfo",
    "ExtractorUnavailable",
    "get_extractor",
    "list_extractors",
    "register_extractor",
]
