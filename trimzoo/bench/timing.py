"""Round-robin timing lives in :mod:`trimzoo.utils.timing`; this name is
kept for existing imports."""

from trimzoo.utils.timing import (median, median_ratio, round_robin,  # noqa
                                  spread)
