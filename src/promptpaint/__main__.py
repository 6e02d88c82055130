from promptpaint.cli.app import entry

entry()
