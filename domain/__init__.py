"""Pure billing rules: money, channels, rating. No I/O, safe to import from workflows."""
