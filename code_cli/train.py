"""Moved to code_cli.prior.train (the prior's room); `python -m code_cli.train` still runs it."""

from code_cli.prior.train import *  # noqa: F401,F403
from code_cli.prior.train import main

if __name__ == "__main__":
    main()
