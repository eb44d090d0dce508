from code_cli.cli import entrypoint

entrypoint()
