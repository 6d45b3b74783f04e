"""Money in: checkouts, the Razorpay webhook, unmatched payments for support."""
