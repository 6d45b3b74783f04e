"""A trivial workflow for the TLS connection test (its own module, so the sandbox imports
nothing else)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class GreetOverTls:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"
