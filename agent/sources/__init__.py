"""Sources produce work (a path, or frames with timestamps); they never classify."""
