from tests.support.email import capture_server, harness

__all__ = ["capture_server", "harness"]
