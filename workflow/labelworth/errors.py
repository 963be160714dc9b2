"""The one exception type that means "the user gave bad input".

The CLI prints it as a single line and exits with status 2; every other exception is a bug and keeps
its traceback.
"""


class LabelworthError(Exception):
    """Bad input (config, data, checkpoint): the message says what was expected where."""
