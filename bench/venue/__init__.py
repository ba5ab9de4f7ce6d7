"""The whole venue under load, seen from outside: a private venue started like ``./mercury start`` (``stack``), funded
accounts with API keys (``accounts``), an open-loop signed order flow through the front door (``flow``, ``http``,
``loadgen``), observation points on the venue's own sockets and stores (``observe``), latency per hop (``hops``)
and CPU per process (``cpu``). ``python -m bench latency``, ``load`` and ``chaos`` are built from these pieces."""
