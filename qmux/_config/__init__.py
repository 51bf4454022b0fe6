"""Config files, read declaratively: the TOML keys are the fields of qmux's attrs classes.

One cattrs converter (`_converter`) structures a parsed TOML document into the classes
themselves, so that a key's name, default and rule have one source each, the class:

- ``[backends.<name>]``: the fields of `qmux.BackendConfig` and `LocalBackend`'s own
  (read by `qmux.backends.load_backends`, and by `qmux.server.load_config` too);
- ``[server]``: `qmux.server.ServerSettings`; ``[service]``: `qmux.ServiceSettings`;
  ``[[tenants]]``: `qmux.server.Tenant`, plus ``token`` for its digest (`qmux.server.load_config`).

The rules: unknown keys are refused; nothing is coerced (``num_qubits = "5"`` is a mistake,
not 5); a ``float`` field is a time in seconds and also takes a duration ("90s", "25m",
"1h30m", read by `qmux.parse_duration`); each field's attrs validator (``qmux._core``'s one
family) runs as its key is read. Every mistake of a file is reported at once, in one
`qmux.InvalidInputError` that names the file, the table (``[backends.fake_x]``, ``[server]``,
``[[tenants]] #2``), the key and what is allowed (`_errors` turns cattrs' exception groups
into that message).

**Adding a key** is adding a field to the class, with a default, a validator from
``qmux._core`` (or a new one there, whose message names the value and what is allowed) and a
``#:`` comment. The key exists in the file at once, under the field's name; a field typed
``float`` takes durations. Then document it where its table is documented (the module
docstring that reads the table, and the README) and add a test that it takes effect:
``tests/backends/test_backends_config.py`` and ``tests/server/test_server_config.py`` each
fail until every key has one. Validators run with no instance while a file is read, so a rule
between two fields belongs in the class's ``__attrs_post_init__`` (still run; its error is
reported for the whole table). A field no file may set (a callable) belongs in a class that
is not read from a file, or is left out by hand, as `qmux.backends` leaves out
``LocalBackend.programs``.
"""

from __future__ import annotations

from ._converter import TableError, converter, register_table, toml_type
from ._read import read_toml, structure

__all__ = ["TableError", "converter", "read_toml", "register_table", "structure", "toml_type"]
