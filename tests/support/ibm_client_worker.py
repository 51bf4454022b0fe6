"""A long-lived qiskit-ibm-runtime client process for tests/test_ibm_client.py: it runs the snippets it is sent.

Importing qiskit-ibm-runtime takes about a second and a half, so the tests start one client
process per tenant and send it each snippet in turn instead of paying that per snippet. The
client is still the real, unmodified, synchronous one, in its own process, configured only by
the environment ``qmux serve --ibm-compat`` printed, and talking to the server over a socket.

Protocol, one JSON object per line each way: ``{"ready": true}`` once imported; then for each
``{"code": "..."}`` received, ``{"stdout": "...", "error": null | "<traceback>"}``. A snippet
runs in a fresh namespace with its prints captured; warnings go to stderr as usual.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback


def main() -> None:
    channel = sys.stdout
    import qiskit_ibm_runtime  # noqa: F401 - paid once, here

    channel.write(json.dumps({"ready": True}) + "\n")
    channel.flush()
    for line in sys.stdin:
        code = json.loads(line)["code"]
        captured = io.StringIO()
        error: str | None = None
        with contextlib.redirect_stdout(captured):
            try:
                exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})
            except BaseException:
                error = traceback.format_exc()
        channel.write(json.dumps({"stdout": captured.getvalue(), "error": error}) + "\n")
        channel.flush()


if __name__ == "__main__":
    main()
