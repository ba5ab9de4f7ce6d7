"""The FIX 4.4 order-entry gateway: a QuickFIX acceptor in front of the HTTP gateway's operations (docs/fix.md)."""
