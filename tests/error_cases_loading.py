"""Error cases of loading (see tests/error_cases.py)."""
from error_cases import ErrorCase  # noqa: F401

CASES = []
