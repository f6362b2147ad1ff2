"""Socketproof's Locust integration: command-line options, the embedded target, run plugins."""
