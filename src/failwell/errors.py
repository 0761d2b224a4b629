"""One exception root with a few grouped subclasses.

Each says what was wrong and what to do. The CLI turns any :class:`FailwellError` into one
message and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FailwellError(Exception):
    """Root of every error failwell raises on purpose."""

    exit_code = 2


class InputError(FailwellError):
    """The data or options given cannot be used as they are (missing column, empty file...)."""


class UnknownIdError(InputError):
    """A failure-mode, pattern or detector id that the catalog or registry does not know."""


class ModelError(FailwellError):
    """A model could not be loaded or called."""


class UntrustedModelError(ModelError):
    """A pickle-based model file was given without ``--trust-model``."""


class InconclusiveError(FailwellError):
    """A probe ran but its answers cannot support a verdict either way (a model that answers
    nothing usable, or gets every control question wrong). Exit 2, never a silent pass."""


class MissingExtraError(FailwellError):
    """An optional dependency is needed; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package {package!r}: "
            f"pip install 'failwell[{extra}]'"
        )
        self.package, self.extra = package, extra


def require(module: str, *, extra: str, purpose: str):
    """Import an optional dependency at the point of use, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc


def import_spec(spec: str, *, what: str, usage: str):
    """The object a ``module:name`` text names (a user's recommender, candidate policy or
    model recipe): ``usage`` is the error when the text is not of that form, and a failed
    import says which ``what`` could not be imported."""
    import importlib

    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise InputError(usage)
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot import the {what} {spec!r}: {exc}") from None


def close_matches(word: str, choices, *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The known names closest to a misspelled one (for "did you mean" hints)."""
    import difflib

    return difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)


def did_you_mean(word: str, choices, *, cutoff: float = 0.6) -> str:
    """" Did you mean 'a', 'b'?" or "" when nothing is close."""
    close = close_matches(word, choices, cutoff=cutoff)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class StoreError(FailwellError):
    """The knowledge base cannot be used: unreachable, or from a newer failwell."""


class StoreBusyError(StoreError):
    """Another process holds the write lock for longer than the wait; retrying will work."""

    exit_code = 75  # EX_TEMPFAIL: try again


class NotFoundError(InputError):
    """No stored record has the id that was asked for."""


class PublishBlockedError(InputError):
    """A postmortem with open blame-framing flags cannot be published without a reason."""
