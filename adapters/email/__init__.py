"""Outgoing email: the `EmailSender` interface, SendGrid and dev senders, templates, and a local
SendGrid-compatible capture server for development and tests."""
