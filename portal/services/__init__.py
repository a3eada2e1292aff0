"""Use cases: one function per business action; each owns its transaction and audit row."""
