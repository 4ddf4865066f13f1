"""The error every log tool raises for a log it cannot use as asked."""

from __future__ import annotations


class LogError(ValueError):
    """The log cannot be read as asked; the message names the file, topic or joint."""
