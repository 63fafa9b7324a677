"""Building blocks of the ``edge-agent run`` daemon: configuration, spool, discovery messages."""
