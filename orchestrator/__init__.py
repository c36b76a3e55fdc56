"""The domain and its loop: registrations as persisted state machines. No I/O library here."""
