"""Error cases of data (see tests/error_cases.py)."""
from error_cases import ErrorCase  # noqa: F401

CASES = []
