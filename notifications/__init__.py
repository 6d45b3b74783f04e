"""Telling the per-account workflow about balance changes."""
