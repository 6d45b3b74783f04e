"""The call-workflow fixtures (ledger driver) serve the metrics and tracing tests too."""

from tests.workflows.conftest import ledger

__all__ = ["ledger"]
