"""Tables, sessions and all SQL."""
