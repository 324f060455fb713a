"""The core vocabulary: models, ports and errors. Standard library only, no I/O, no clock."""
