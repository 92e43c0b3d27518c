"""callkeeper: no caller to an Asterisk PBX is lost."""

__version__ = "0.1.0"
