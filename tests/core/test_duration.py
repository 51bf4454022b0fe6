"""Durations as users write them (SPEC S4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import qmux


@pytest.mark.parametrize(
    ("text", "seconds"), [("25m", 1500), ("1h30m", 5400), ("90s", 90), ("2h", 7200), ("1h0m5s", 3605), ("0.5h", 1800)]
)
def test_S4_parse_duration_reads_what_users_write(text: str, seconds: float) -> None:
    assert qmux.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", " ", "-5m", "25x", "h", "1m1h", "5 m", "1e3s", "nan", 0, -3, float("inf"), None])
def test_S4_parse_duration_refuses_anything_else(bad: object) -> None:
    with pytest.raises(qmux.InvalidInputError, match=r"limit=.*(not a duration|positive)"):
        qmux.parse_duration(bad, name="limit")


@given(st.integers(min_value=1, max_value=10**7))
def test_S4_format_and_parse_round_trip(seconds: int) -> None:
    assert qmux.parse_duration(qmux.format_duration(seconds)) == seconds


def test_format_duration_is_compact() -> None:
    assert qmux.format_duration(5400) == "1h30m"
    assert qmux.format_duration(90) == "1m30s"
    assert qmux.format_duration(2.5) == "2.5s"
