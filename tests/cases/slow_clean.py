"""The clean digits case, but every raw image takes a while to read: a check is in flight long
enough for a test to kill the process mid-check."""

import time

from digits_clean import *  # noqa: F403
from digits_clean import raw_datasets as _raw

from detective.casekit.demo import kit


class _Slow(kit.ArrayImages):
    def __getitem__(self, i):
        time.sleep(0.02)
        return super().__getitem__(i)


def raw_datasets():
    return {k: _Slow(v.images, v.labels) for k, v in _raw().items()}
