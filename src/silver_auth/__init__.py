"""Silver Auth API: the service behind SEQN Auth."""

__version__ = "0.1.0"
