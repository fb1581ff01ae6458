"""Security groups, their rules and the default group."""
