"""code-restore: blind image restoration with CODE (Confident Ordinary Differential Editing)."""

__version__ = "0.1.0"
