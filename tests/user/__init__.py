"""What a Socketproof user sees: the README commands, the error messages, the web UI in a browser."""
