from sweep.cli.main import entry

entry()
