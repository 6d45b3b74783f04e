"""The API's internal Prometheus endpoint: `http://API_METRICS_HOST:API_METRICS_PORT/metrics`
(default 127.0.0.1:9465), served by the API process from a thread, never on the public port.

The ledger-wide gauges (active holds, reserved paisa) are read from PostgreSQL by a background
thread every `ledger_gauges_refresh_seconds` (one aggregate over the active holds, on the
partial index `ix_holds_active`), so a scrape never touches the database; while PostgreSQL
does not answer, the gauges keep their last values and
`billing_ledger_gauge_refresh_errors_total` counts the failed reads.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from sqlalchemy.orm import Session, sessionmaker

from api.metrics import ACTIVE_HOLDS, LEDGER_GAUGE_ERRORS, REGISTRY, RESERVED_PAISA
from ledger.reports import hold_totals

log = logging.getLogger(__name__)


class LedgerGauges:
    """Refreshes the ledger gauges in a daemon thread until `stop()`."""

    def __init__(self, factory: sessionmaker[Session], interval: float) -> None:
        self.factory = factory
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-gauges", daemon=True)

    def refresh(self) -> bool:
        try:
            with self.factory() as session:
                totals = hold_totals(session)
        except Exception:
            LEDGER_GAUGE_ERRORS.inc()
            log.warning("ledger gauges not refreshed", exc_info=True)
            return False
        ACTIVE_HOLDS.set(totals.active_holds)
        RESERVED_PAISA.set(totals.reserved_paisa)
        return True

    def _run(self) -> None:
        while True:
            self.refresh()
            if self._stop.wait(self.interval):
                return

    def start(self) -> LedgerGauges:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class MetricsServer:
    """The metrics endpoint plus the ledger gauges behind it; `start()` returns None when the
    port is 0 (off) or cannot be bound (a second API process on one host still serves)."""

    def __init__(self, httpd: WSGIServer, gauges: LedgerGauges) -> None:
        self.httpd = httpd
        self.gauges = gauges

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @classmethod
    def start(
        cls, host: str, port: int, factory: sessionmaker[Session], refresh_seconds: float
    ) -> MetricsServer | None:
        if not port:
            return None
        try:
            httpd, _ = start_http_server(port, addr=host, registry=REGISTRY)
        except OSError:
            log.warning("API metrics not served: cannot bind %s:%s", host, port, exc_info=True)
            return None
        log.info("API metrics on http://%s:%s/metrics", host, port)
        return cls(httpd, LedgerGauges(factory, refresh_seconds).start())

    def stop(self) -> None:
        self.gauges.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
