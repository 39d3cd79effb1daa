"""The subcommands of the ``fswatchd`` command line, one module each (see ``fswatchd.cli``)."""
