"""Market-data feeds built from the engine's events. Built by a later issue."""
