"""A short fuzzing run of every parser of untrusted input (benchmarks/fuzz.py runs them for
minutes): whatever the input, only alphacut's own errors come out, never a 500."""

import pytest
from alphacut_dev.fuzz import PROPERTIES, check


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_untrusted_input_only_ever_raises_our_own_errors(name):
    check(name, examples=300)
