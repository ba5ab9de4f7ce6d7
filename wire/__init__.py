"""Mercury's wire protocol: message types, the msgpack codec, symbol/venue config and key names.

Everything that crosses a process boundary is defined here, so the sequencer, the engine, the gateways and the
tests agree on one set of types. Nothing in this package performs I/O (config reads the environment only
when a process asks for it).
"""
