from tests.emailing.support import capture_server, harness

__all__ = ["capture_server", "harness"]
