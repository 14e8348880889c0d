"""The CLI's one error type, in a module of its own: ``python -m exoclaw_core.cli.main`` runs
``main.py`` as ``__main__``, and a class defined there would not be the one the commands raise."""


class UserError(Exception):
    """A problem the user can fix: printed as one sentence, exit code 1, no traceback."""
