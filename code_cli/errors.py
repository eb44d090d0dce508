"""Typed errors raised by the library; only the CLI turns them into exit codes."""

from __future__ import annotations


class CodeRestoreError(Exception):
    """Base class: the message is one line a user can act on."""


class ConfigError(CodeRestoreError):
    """A preset, flag or config value is wrong (exit 2)."""


class InputError(CodeRestoreError):
    """One input cannot be read or used; the batch goes on (exit 1 at the end)."""


class ModelError(CodeRestoreError):
    """The model cannot be located, loaded or used (exit 2)."""


class OutputError(CodeRestoreError):
    """An output cannot be written (disk full, read-only, path escapes OUTPUT)."""


class NumericalError(CodeRestoreError):
    """The model produced NaN or Inf for an image; nothing is written for it."""
