"""The one error type of the toolkit."""


class StackError(Exception):
    """Something in the stack could not be started, stopped or reached."""
