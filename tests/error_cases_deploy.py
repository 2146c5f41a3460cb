"""Error cases of deploy (see tests/error_cases.py)."""
from error_cases import ErrorCase  # noqa: F401

CASES = []
