"""provisioner: one declarative site file in, a standards-clean mail system out."""

__version__ = "0.1.0"
