"""The domain and the engine: cases, checks' registry, findings, ledger, sessions, playbooks,
reports."""
