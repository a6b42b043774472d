"""Helpers shared by the tests of several modules, one module per domain."""
