"""The client distribution (clients/python) is not installed in the server's environment: these
tests import it from its source tree, and one test installs it alone into a fresh venv."""

from __future__ import annotations

import sys
from pathlib import Path

CLIENT_SRC = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))

from tests.workflows.conftest import ledger  # noqa: E402

__all__ = ["ledger"]
