"""Use cases: load through db/, decide through domain/, write through db/."""
