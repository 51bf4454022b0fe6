"""Every Python example in the README runs, as a user would run it.

A block whose first line names a test file (``# test_agent.py``) is a user's test file: it is
written to a directory of its own, outside this repository and its conftest, and run with the
``$ pytest ...`` command of the next ``text`` block, whose output must be the one shown there
(durations aside). Every other Python block runs as a script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = [(m.group(1), m.group(2), m.start()) for m in re.finditer(r"```(\w*)\n(.*?)```", TEXT, flags=re.DOTALL)]
_TEST_FILE = re.compile(r"# (test_\w+\.py)\n")

EXAMPLES = [code for language, code, _ in BLOCKS if language == "python" and not _TEST_FILE.match(code)]


def _test_files() -> list[tuple[str, str, str]]:
    """(file name, code, the output block after it) for each test file the README shows."""
    found = []
    for index, (language, code, _) in enumerate(BLOCKS):
        named = _TEST_FILE.match(code) if language == "python" else None
        if named is None:
            continue
        output = next((text for lang, text, _ in BLOCKS[index + 1 :] if lang == "text" and text.startswith("$ ")), "")
        found.append((named.group(1), code, output))
    return found


TEST_FILES = _test_files()


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 3
    assert TEST_FILES, "the README's section on qmux.testing shows a test file and its output"


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _normalised(output: str) -> list[str]:
    """Output lines without what changes from run to run: durations, and the rule's width around them."""
    lines = []
    for line in output.strip().splitlines():
        line = re.sub(r" in [\d.]+s\b", " in <duration>", line.rstrip())
        lines.append(re.sub(r"^=+ (.*?) =+$", r"== \1 ==", line))
    return lines


@pytest.mark.parametrize(("name", "code", "shown"), TEST_FILES, ids=[name for name, _, _ in TEST_FILES])
def test_readme_test_file_passes_with_plain_pytest_and_prints_what_the_readme_shows(
    name: str, code: str, shown: str, tmp_path: Path
) -> None:
    command, _, expected = shown.partition("\n")
    assert command.startswith("$ pytest ") and name in command, f"the block after {name} starts with its command"
    (tmp_path / name).write_text(code, encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *command.split()[2:]],
        cwd=tmp_path,  # no ini file, no conftest: what a user has after `pip install 'qmux[testing,server]'`
        env=environment | {"COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _normalised(done.stdout) == _normalised(expected)


TOML_BLOCKS = [code for language, code, _ in BLOCKS if language == "toml"]


@pytest.mark.parametrize("text", TOML_BLOCKS, ids=[f"toml{i}" for i in range(len(TOML_BLOCKS))])
def test_readme_config_files_load(text: str, tmp_path: Path) -> None:
    from qmux.backends import load_backends
    from qmux.server import load_config

    path = tmp_path / "qmux.toml"
    path.write_text(text, encoding="utf-8")
    if "[[tenants]]" in text or "[server]" in text:
        assert load_config(path).backends
    else:
        assert load_backends(path)
