"""Errors a user can fix. Scripts print them without a traceback and exit with code 2."""


class UserError(Exception):
    """Bad input (path, config, checkpoint, data): the message says what and how to fix it."""
