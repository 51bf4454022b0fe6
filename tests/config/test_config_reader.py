"""``qmux._config``: a field added to a class is a key of its table at once, read by the same rules.

The classes here stand for one a contributor adds to (a per-tenant limit in ``[server]``, say):
nothing is registered for them, yet their keys are read, checked by their validators, their
times take durations, their nested tables and arrays work, and their mistakes are reported
like any other, naming the table and the key.
"""

from __future__ import annotations

from typing import Any

import pytest
from attrs import field, frozen, validators

import qmux
from qmux._config import structure
from qmux._core import non_negative_seconds, positive_int, positive_seconds


@frozen
class Limit:
    jobs: int = field(default=10, validator=positive_int)
    window: float = field(default=60.0, validator=positive_seconds)


@frozen
class Settings:
    limit: Limit = field(factory=Limit)
    per_tenant: dict[str, Limit] = field(factory=dict)
    tiers: tuple[Limit, ...] = ()
    grace: float | None = field(default=None, validator=validators.optional(non_negative_seconds))


def read(document: dict[str, Any]) -> Settings:
    return structure(document, Settings, source="x.toml")


def test_a_new_field_is_a_key_with_its_default_its_type_and_its_validator() -> None:
    assert read({}) == Settings()
    document = {
        "limit": {"jobs": 3, "window": "2m"},
        "per_tenant": {"alice": {"jobs": 1}},
        "tiers": [{"window": 5}, {}],
        "grace": 0,
    }
    assert read(document) == Settings(
        limit=Limit(3, 120.0), per_tenant={"alice": Limit(1)}, tiers=(Limit(window=5.0), Limit()), grace=0.0
    )
    assert type(read({"grace": 2}).grace) is float and read({"grace": "1h30m"}).grace == 5400.0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"limit": {"job": 3}}, "x.toml: [limit] unknown key 'job'; allowed keys: jobs, window"),
        ({"limit": {"jobs": "3"}}, "x.toml: [limit] jobs='3' must be a positive whole number"),
        ({"limit": {"jobs": 3.0}}, "x.toml: [limit] jobs=3.0 must be a positive whole number"),
        ({"limit": {"window": "later"}}, "x.toml: [limit] window='later' is not a duration; use a positive"),
        ({"limit": 5}, "x.toml: [limit] must be a table, not an integer"),
        ({"per_tenant": []}, "x.toml: per_tenant must be a table, not an array"),
        ({"per_tenant": {"bob smith": {"jobs": 0}}}, 'x.toml: [per_tenant."bob smith"] jobs=0 must be a positive'),
        ({"tiers": {}}, "x.toml: tiers must be an array of tables ([[tiers]]), not a table"),
        ({"tiers": [{}, {"jobs": -1}]}, "x.toml: [[tiers]] #2 jobs=-1 must be a positive whole number"),
        ({"tiers": ["fast"]}, "x.toml: [[tiers]] #1 must be a table, not a string"),
        ({"grace": True}, "x.toml: grace=True is not a duration"),
        ({"grace": -1}, "x.toml: grace=-1 must be a finite number of seconds, 0 or more"),
        ({"limits": {}}, "x.toml: unknown top-level key 'limits'; allowed keys: limit, per_tenant, tiers, grace"),
    ],
)
def test_a_new_fields_mistakes_name_the_table_and_the_key(document: dict[str, Any], message: str) -> None:
    with pytest.raises(qmux.InvalidInputError) as refused:
        read(document)
    assert str(refused.value).startswith(message)


def test_all_the_mistakes_are_listed_in_the_files_order() -> None:
    with pytest.raises(qmux.InvalidInputError) as refused:
        read({"limit": {"jobs": 0, "window": 0, "x": 1}, "tiers": [{"jobs": 0}], "grace": "soon"})
    assert str(refused.value).splitlines() == [
        "x.toml: 5 mistakes:",
        "  - [limit] jobs=0 must be a positive whole number",
        "  - [limit] window=0 must be a positive, finite number of seconds",
        "  - [limit] unknown key 'x'; allowed keys: jobs, window",
        "  - [[tiers]] #1 jobs=0 must be a positive whole number",
        "  - grace='soon' is not a duration; use a positive number of seconds or a string such as '90s', '25m', "
        "'2h' or '1h30m'",
    ]
