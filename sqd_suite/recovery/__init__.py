"""Bitstrings <-> orbital strings, configuration recovery, post-selection, subsampling.

The qiskit-addon-sqd names (:func:`recover_configurations`,
:func:`postselect_by_hamming`, :func:`subsample`) keep its signatures and, for the
same generator state, its results; :func:`configuration_batches` is the fast path
the SQD loop calls. See docs/recovery.md.
"""

from sqd_suite.recovery.bitstrings import (
    bitstrings_to_strings,
    bitstrings_to_words,
    strings_to_bitstrings,
    words_to_bitstrings,
)
from sqd_suite.recovery.configuration_recovery import (
    postselect_by_hamming,
    recover_configurations,
    recover_strings,
)
from sqd_suite.recovery.subsampling import (
    DistinctCounts,
    configuration_batches,
    count_distinct,
    subsample,
)

__all__ = [
    "DistinctCounts",
    "bitstrings_to_strings",
    "bitstrings_to_words",
    "configuration_batches",
    "count_distinct",
    "postselect_by_hamming",
    "recover_configurations",
    "recover_strings",
    "strings_to_bitstrings",
    "subsample",
    "words_to_bitstrings",
]
