"""Servers built on third-party frameworks (python-socketio, strawberry-graphql, websockets, Django
Channels on daphne, Starlette):
targets nobody on this team wrote the protocol stack of, run by the README's examples, the tests
and the benchmarks (`python -m apps.socketio_app --help`)."""
