"""Local stand-in for Razorpay (API, hosted checkout, signed webhooks): `python -m dev.razorpay`."""
