"""The one exception type users see for bad input."""


class InversionError(ValueError):
    """Bad input or configuration, with a message that says what to do.

    Raised for unknown classifier specs, missing weights files, specs that need the
    network while offline, empty image folders and mis-sized inputs.
    """
