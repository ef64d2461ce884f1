"""The world-metric tests' hand-made methods change exactly what they say."""

import numpy as np

from spf_bench.world.attributes import NAMES
from support.world_cases import METHODS, _case


def test_methods_change_exactly_what_they_say():
    case = _case(2, np.random.default_rng(0))
    changed = [k for k in NAMES if case.polluted[k] != case.original[k]]
    assert changed == sorted([case.target, case.other], key=NAMES.index)
    assert [k for k in NAMES if case.edited[k] != case.original[k]] == [case.target]
    assert not np.array_equal(METHODS["stranger"](case, 32), METHODS["clean"](case, 32))
