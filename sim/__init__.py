"""The market simulator (``python -m sim``): funded bot accounts that trade on the venue only through its public
APIs, as outside bots would: market makers, noise takers and momentum traders over REST, the WebSocket API and FIX
(docs/operations.md, "Market simulator")."""
