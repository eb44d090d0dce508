"""The prior's data and training: photo sources, container readers, the manifest, the training loop.

Nothing that runs at restore time imports this package.
"""
