"""Payment gateway interface (refunds) and its sandbox."""
