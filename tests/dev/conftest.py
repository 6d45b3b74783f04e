from tests.support.email import capture_server
from tests.support.razorpay import razorpay_standin, webhook_receiver

__all__ = ["capture_server", "razorpay_standin", "webhook_receiver"]
