"""The rules users read ship with the repository (docs/SPEC.md), in step with the project's spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULE = re.compile(r"\*\*([A-Z][0-9]+)\*\*")


def test_docs_spec_holds_every_rule_that_tests_name() -> None:
    rules = set(RULE.findall((ROOT / "docs" / "SPEC.md").read_text()))
    named = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        named |= set(re.findall(r"def test_([A-Z][0-9]+)_", path.read_text()))
    assert named <= rules, f"tests name rules docs/SPEC.md does not have: {sorted(named - rules)}"


def test_docs_spec_is_in_step_with_the_shared_spec_when_it_is_beside_the_repository() -> None:
    shared = ROOT.parent / "shared" / "SPEC.md"
    if not shared.exists():
        pytest.skip("no ../shared/SPEC.md beside this checkout (a user's clone): nothing to compare")
    assert (ROOT / "docs" / "SPEC.md").read_text() == shared.read_text(), "copy ../shared/SPEC.md to docs/SPEC.md"
