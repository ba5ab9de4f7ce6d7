"""The Python client library: submit commands to the sequencer, read acknowledgements and the engine's events.

Used by the gateways, the tests and the benchmarks::

    from client.sequencer import SequencerClient
    from client.events import EventFollower
"""
