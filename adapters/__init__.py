"""Our edges to the outside world: email (`email/`: the EmailSender interface, SendGrid, the
templates), payments (`payments/`: the gateway interface and its implementations) and the one
publisher of balance changes to the account workflow (`balance_events`)."""
