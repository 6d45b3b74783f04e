from tests.support.email import capture_server

__all__ = ["capture_server"]
