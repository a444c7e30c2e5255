"""One base class for the package's user errors (a missing file, a bad value, an unreadable model
or bag). The CLI catches it once and prints one line (exit code 2); the node turns it into a clear
start-up error or a counted, throttled warning. Anything else escaping is a bug: let it trace."""


class FornetError(ValueError):
    """A user-facing error whose message, on one line, says what is wrong and where."""
