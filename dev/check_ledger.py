"""`make check-ledger`: the ledger invariants against DATABASE_URL, or else the `billing`
database of the embedded server `make serve` runs (RUN_DIR/pgdata, RUN_DIR defaulting to .run).
Production runs `python -m ledger.invariants` with DATABASE_URL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dev.postgres import embedded_billing_database
from ledger.invariants import main as check_ledger_main


def main() -> int:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return check_ledger_main(sys.argv[1:], database_url=url)
    data_dir = (Path(os.environ.get("RUN_DIR") or ".run") / "pgdata").absolute()
    server, url = embedded_billing_database(data_dir)
    try:
        return check_ledger_main(sys.argv[1:], database_url=url)
    finally:
        server.cleanup()  # stops the server only if this command started it


if __name__ == "__main__":
    sys.exit(main())
