"""The commission rules as pure functions: money, periods, plans and the calculation.

Nothing here performs I/O or knows about HTTP or the database, so every rule can be
property-tested in isolation.
"""
