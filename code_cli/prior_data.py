"""Moved to code_cli.prior.photos (the prior's room); kept so existing imports work."""

from code_cli.prior.photos import (  # noqa: F401
    HELDOUT_PHOTOS,
    MATE_LICENCE,
    MATE_NATURE,
    TRAIN_PHOTOS,
    Photo,
    cap_long_side,
    check_sources,
    to_unit_array,
)
