"""Bad input, one table: every case in the tests/error_cases_<area>.py tables must end with a
clear message naming the file or value and the fix, exit code 2, no traceback and no partial
output (harness: tests/error_cases.py)."""
import glob
import importlib
import os

import pytest

from error_cases import Ctx, run_case

HERE = os.path.dirname(__file__)
TABLES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, 'error_cases_*.py')))
CASES = [case for name in TABLES for case in importlib.import_module(name).CASES]


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.id)
def test_bad_input_ends_with_a_clear_message(case, tmp_path, mini_root, mini_config, capsys):
    run_case(case, Ctx(str(tmp_path), mini_root, mini_config), capsys)
