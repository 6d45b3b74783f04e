"""The SendGrid capture server (`dev.email_capture`): SendGrid's checks on `POST /v3/mail/send`,
and its command line as `make serve` starts it, driven by the real `sendgrid` client."""

from __future__ import annotations

import subprocess

import httpx

from adapters.email.sender import EmailMessage, SendGridEmailSender
from dev.email_capture import CaptureServer
from dev.procs import free_port, python_command
from tests.support.email import uid


async def test_capture_server_requires_auth_and_valid_body(capture_server: CaptureServer) -> None:
    url = f"{capture_server.url}/v3/mail/send"
    assert httpx.post(url, json={}).status_code == 401
    bad = httpx.post(url, json={"subject": "x"}, headers={"Authorization": "Bearer k"})
    assert bad.status_code == 400 and bad.json()["errors"]


async def test_capture_server_command_line() -> None:
    """`python -m dev.email_capture --port N`, as `make serve` starts it."""
    port = free_port()
    process = subprocess.Popen(
        python_command("dev.email_capture", "--port", str(port)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "capture server" in process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        to = f"{uid('g')}@example.com"
        message = EmailMessage(
            to=to, subject="Hello", text="plain", html="<p>html</p>", dedupe_key=uid("test")
        )
        await SendGridEmailSender("SG.key", url).send(message)
        listed = httpx.get(f"{url}/messages").json()["messages"]
        assert [m["to"] for m in listed] == [[to]]
        assert httpx.delete(f"{url}/messages").status_code == 204
        assert httpx.get(f"{url}/messages").json()["messages"] == []
    finally:
        process.terminate()
        process.wait(timeout=5)
