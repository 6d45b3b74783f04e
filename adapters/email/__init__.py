"""Outgoing email: the `EmailSender` interface, the SendGrid and dev senders, and the templates.
(The SendGrid stand-in for development and tests is dev tooling: `dev.email_capture`.)"""
