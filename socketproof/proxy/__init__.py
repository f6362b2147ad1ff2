"""A WebSocket-aware fault proxy: relays frames exactly, or with per-message faults, in front of any server.

`python -m socketproof.proxy --upstream ws://host:port --faults drop=0.2` on the command line;
`FaultProxy` / `ProxyProcess` (control.py) for tests; `locust --proxy-faults SPEC` for a run.
"""

from socketproof.proxy.control import FaultProxy, ProxyError, ProxyProcess
from socketproof.proxy.faults import FaultSpec, FaultSpecError, parse_spec

__all__ = ["FaultProxy", "FaultSpec", "FaultSpecError", "ProxyError", "ProxyProcess", "parse_spec"]
