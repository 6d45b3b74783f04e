"""The call-workflow fixtures (ledger driver, in-process billing worker) serve these tests too."""

from tests.workflows.conftest import billing, ledger

__all__ = ["billing", "ledger"]
