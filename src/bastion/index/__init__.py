"""In-memory match structures (layer 2: pure, no database, no I/O but snapshot files).

Fed and updated in place by the store layer:

* :class:`PdqIndex` (:mod:`bastion.index.pdq`): exact Hamming range search over PDQ hashes,
  multi-index hashing plus a flat-scanned delta, snapshots to ``.npz``.
* :class:`ExactIndex` (:mod:`bastion.index.exact`): value -> entry ids for MD5, SHA-1,
  SHA-256 and any string signal.
"""

from bastion.index.exact import ExactIndex, ExactMatches
from bastion.index.pdq import (
    PdqIndex,
    PdqIndexStats,
    PdqMatches,
    as_words,
    codes_to_hex,
    codes_to_words,
    hex_to_codes,
    hex_to_words,
    words_to_codes,
    words_to_hex,
)

__all__ = [
    "ExactIndex",
    "ExactMatches",
    "PdqIndex",
    "PdqIndexStats",
    "PdqMatches",
    "as_words",
    "codes_to_hex",
    "codes_to_words",
    "hex_to_codes",
    "hex_to_words",
    "words_to_codes",
    "words_to_hex",
]
