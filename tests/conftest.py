"""Patch with gevent before anything imports `ssl`.

Locust patches the standard library with gevent when it is imported, and some test module
always imports it, so every test of a full run already runs patched; but by then `ssl` may
have been imported unpatched (websocket-client, an ASGI test app's anyio), and Locust's own
SSL context then recurses forever at import. Patching first makes a partial run the same as
a full one.
"""

from gevent import monkey

monkey.patch_all()
