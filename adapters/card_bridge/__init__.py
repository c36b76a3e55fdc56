"""The HTTP API the phone app calls, reached through one-time links bound to a registration."""
