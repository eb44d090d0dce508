"""The numerics of CODE and its baseline SDEdit, as pure functions of
(noise predictor, tensors, levels, generators). No files, flags or progress bars."""

from code_cli.method import prior_choice, range_map
from code_cli.method.auto import AutoChoice, auto_restore, choose
from code_cli.method.cbc import cbc_bound, cbc_clip
from code_cli.method.code import CODEParams, Correction, MethodOutput, code_restore, correct, decode, encode
from code_cli.method.schedule import Levels, make_levels
from code_cli.method.sdedit import SDEditParams, sdedit
from code_cli.method.threshold import make_threshold, no_threshold

# name -> (the method, its parameters): what the pipeline picks a method by
METHODS = {"code": (code_restore, CODEParams), "sdedit": (sdedit, SDEditParams)}


def get_method(name: str):
    """The method and its parameter class for a name; an unknown name lists the valid ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}") from None


__all__ = [
    "AutoChoice", "auto_restore", "choose", "CODEParams", "Correction", "Levels", "METHODS", "MethodOutput",
    "SDEditParams", "cbc_bound", "get_method", "cbc_clip", "code_restore", "correct", "decode", "encode", "make_levels",
    "make_threshold", "no_threshold", "prior_choice", "range_map", "sdedit",
]
