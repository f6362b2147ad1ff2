"""Small helpers that both the reference server (server/) and socketproof/ use, so neither owns them.

Nothing here imports anything of the project: `values` checks the numbers in switch and
fault-spec text, `child_process` runs a child Python process that prints a ready line,
`defaults` holds what the reference server and the client must agree on (the development secret).
"""
