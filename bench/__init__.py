"""The performance benchmark: the real Lambda handlers against the database floor (`make bench`).

Not part of the test suite: it prints figures and writes them to bench/results/, it does not pass or fail
on timings (only the EXPLAIN plan checks and the import guard are assertions).
"""
