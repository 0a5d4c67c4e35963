"""Process-level settings of a serving process."""

from __future__ import annotations

import gc

from kibitz.runtime.server import SERVING_GC_THRESHOLDS, tune_garbage_collection


def test_a_serving_process_collects_garbage_less_often_than_pythons_default() -> None:
    default = gc.get_threshold()
    try:
        tune_garbage_collection()
        young, middle, old = gc.get_threshold()
        assert (young, middle, old) == SERVING_GC_THRESHOLDS
        assert young > 700 and middle > 10 and old > 10  # Python's defaults: (700, 10, 10)
    finally:
        gc.set_threshold(*default)
