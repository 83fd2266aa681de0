"""Decide whether a raised exception is worth retrying (python-api.md §8.2, execution.md §8).

Handlers should raise ``RetryableError`` or ``PermanentError``; this classifier covers everything
else they let escape, so that a ``KeyError`` from a bug fails at once instead of burning every
attempt, while a dropped connection is retried.
"""

from __future__ import annotations

import builtins
from typing import Any

from tasker.errors import PermanentError, RetryableError

__all__ = ["ErrorClassifier", "get_classifier", "is_permanent", "is_retryable"]

_PERMANENT_CLASSES: tuple[type[BaseException], ...] = (
    PermanentError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    AssertionError,
    SyntaxError,
    NameError,
    ImportError,
    NotImplementedError,
)

# OSError covers ConnectionError, BrokenPipeError, TimeoutError, BlockingIOError and
# InterruptedError; they are listed anyway so the table reads like the spec.
_RETRYABLE_CLASSES: tuple[type[BaseException], ...] = (
    RetryableError,
    ConnectionError,
    BrokenPipeError,
    builtins.TimeoutError,
    BlockingIOError,
    InterruptedError,
    OSError,
)


class ErrorClassifier:
    """Classifies exceptions as retryable or permanent.

    Args:
        default_retryable: the answer for exceptions that no rule covers.
    """

    def __init__(self, default_retryable: bool = True) -> None:
        self.default_retryable = default_retryable

    def retryable(self, exc: BaseException) -> bool:
        """Whether a step that raised ``exc`` may be retried."""
        return bool(self.classify(exc)["retryable"])

    def permanent(self, exc: BaseException) -> bool:
        """Whether a step that raised ``exc`` must fail without retry."""
        return not self.retryable(exc)

    def classify(self, exc: BaseException) -> dict[str, Any]:
        """Explain the decision.

        Returns:
            ``{error_type, retryable, classification}``; ``classification`` is
            ``explicit_attribute``, ``permanent_class``, ``retryable_class`` or ``default``.
        """
        own = getattr(exc, "retryable", None)
        if isinstance(own, bool):
            retryable, classification = own, "explicit_attribute"
        elif isinstance(exc, _PERMANENT_CLASSES):
            retryable, classification = False, "permanent_class"
        elif isinstance(exc, _RETRYABLE_CLASSES):
            retryable, classification = True, "retryable_class"
        else:
            retryable, classification = self.default_retryable, "default"
        return {
            "error_type": type(exc).__name__,
            "retryable": retryable,
            "classification": classification,
        }


_DEFAULT = ErrorClassifier()


def get_classifier() -> ErrorClassifier:
    """The process-wide classifier (unknown exceptions are retryable)."""
    return _DEFAULT


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is retryable according to the default classifier."""
    return _DEFAULT.retryable(exc)


def is_permanent(exc: BaseException) -> bool:
    """Whether ``exc`` is permanent according to the default classifier."""
    return _DEFAULT.permanent(exc)
