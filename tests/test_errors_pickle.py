"""Input errors survive pickling (they cross worker-process boundaries in sweeps)."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from qverify.errors import ChoiceError, ParameterError


@given(st.text(max_size=20), st.one_of(st.floats(allow_nan=False), st.integers(), st.text(max_size=5)))
def test_errors_round_trip_through_pickle(field, value):
    for err in (ParameterError(field, value, "[0, 1]"), ChoiceError(field, value, ("a", "b"))):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.field == field
