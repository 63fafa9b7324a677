"""Grid Meter edge agent: read electricity meters on RS485 buses and report what they say."""

__version__ = "0.1.0"
