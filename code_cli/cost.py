"""What each method costs in network calls per image, stated once.

The methods count the calls they really spend and the pipeline asserts that the
count matches these formulas; presets use them to show and check a preset's
cost without importing the numerics (or torch).
"""

from __future__ import annotations

from collections.abc import Sequence

# auto mode, when the user gives a depth: the latent is reached by ODE inversion and corrected with
# this many Langevin steps (the `default` preset's K). Here, not in method.auto, so that presets can
# bound auto's cost without importing torch.
AUTO_ENCODE_LANGEVIN_STEPS = 20
# auto mode on line noise (constant along columns or rows): Langevin steps at the level (method.auto).
AUTO_LINE_LANGEVIN_STEPS = 4
# --model auto (routing.py): the embedded priors it chooses between (the default first) and the
# timesteps at which each prior's denoising error is read on the image's centre window. Of 7
# timesteps 50 to 800, alone and in pairs and triples, on a tuning set of training photographs and
# training-font pages (docs/model-auto.md), 100 + 200 and 100 + 300 sent the most images right
# (200 of 226); at 600 and 800 the page prior reads lower on every image, photographs too.
MODEL_AUTO = "auto"
MODEL_AUTO_PRIORS = ("code-prior-s", "code-prior-doc")
MODEL_AUTO_TIMESTEPS = (100, 200)


def code_calls(depth: int, langevin_steps: Sequence[int]) -> int:
    """CODE: L calls to encode, K + 1 for each correction (K noisy steps and a last noise-free one), L to decode."""
    return 2 * depth + sum(k + 1 for k in langevin_steps)


def sdedit_calls(depth: int) -> int:
    """SDEdit: one ancestral step per level from t0 down to the clean image."""
    return depth


def decode_calls(depth: int, decode_steps: int) -> int:
    """Calls of auto's decode from level L: one per level (DDIM), or decode_steps > 0 (the few-step
    solver), never more than L."""
    return min(decode_steps, depth) if decode_steps else depth


def auto_calls(edit: bool, depth: int, langevin_steps: int, encode: bool, sample: bool, decode_steps: int = 0) -> int:
    """auto: nothing for an unedited image; else L to encode (none when the input's own noise is the latent,
    or fresh noise is added: SDEdit's entry, which pages with JPEG blocks get), K + 1 for a correction (none
    for K = 0), and L to decode (decode_calls after a noise or fresh entry: an ODE inversion is decoded on
    its own grid) or 1 for the one-step clean estimate."""
    if not edit or depth == 0:  # depth 0: a page flattened without a network edit
        return 0
    finish = (depth if encode else decode_calls(depth, decode_steps)) if sample else 1
    return (depth if encode else 0) + (langevin_steps + 1 if langevin_steps else 0) + finish


def prior_choice_calls(priors: int = len(MODEL_AUTO_PRIORS), timesteps: int = len(MODEL_AUTO_TIMESTEPS)) -> int:
    """--model auto: one call per prior and timestep, on a window of at most 256 x 256 pixels (cheaper
    than a call on a larger image), before the chosen prior restores the image."""
    return priors * timesteps
