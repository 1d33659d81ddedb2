"""The flow: configuration, the named list of steps and the `btsee` command."""

__version__ = "0.1.0"
