"""OpenTelemetry spans of sampled commands, one per hop, tied together without a byte added to the wire.

Every hop already sees a command's ``in_seq`` (the sequencer's ack carries it to the gateway, the journal to the
engine, each event to the feeds and the persisters), so a command is traced when ``in_seq % trace_every == 0``
(``MERCURY_TRACE_EVERY``; 0, the default, traces nothing) and its ids are *derived*: the trace id is a hash of
(shard, in_seq), each hop's span id a hash of (shard, in_seq, hop). A hop therefore knows its parent's span id
without being told, and the journal, the events and the engine stay as they are: deterministic, untouched by
tracing. The engine's matching thread records nothing; its writer thread records the engine's span from the
sequencer's stamp to the events' publication.

The chain: ``gateway`` (command sent -> journaled ack; the root) <- ``sequencer`` (stamped -> journaled) <-
``engine`` (stamped -> events stored and published) <- ``feed`` and ``persister`` (events received -> sent to
clients / committed). Spans are exported off the hot path by the SDK's batch processor: over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (Jaeger in docker-compose.yml), else as JSON lines to
``<MERCURY_TRACE_DIR>/<service>.jsonl`` (the local run: var/traces).

A hop decides with one modulo per batch, never per command: ``sampled(first, last)`` gives the traced in_seqs of
a range arithmetically.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from wire.config import Settings

PARENT = {"sequencer": "gateway", "engine": "sequencer", "feed": "engine", "persister": "engine"}


def trace_id(shard: str, in_seq: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{shard}:{in_seq}".encode(), digest_size=16).digest(), "big") or 1


def span_id(shard: str, in_seq: int, hop: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{shard}:{in_seq}:{hop}".encode(), digest_size=8).digest(), "big") or 1


class _DerivedIds(IdGenerator):
    """Hands out the ids ``Tracer.span`` set just before it starts a span (per thread: the engine's writer and an
    asyncio loop may record at once)."""

    def __init__(self) -> None:
        self.next = threading.local()

    def generate_span_id(self) -> int:
        return int(self.next.span)

    def generate_trace_id(self) -> int:
        return int(self.next.trace)


class JsonLinesExporter(SpanExporter):
    """One JSON object per span and line: what the SDK's ``to_json`` gives, on one line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out: IO[str] = open(path, "a", encoding="utf-8")  # closed in shutdown
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(json.loads(s.to_json(indent=None)), separators=(",", ":")) + "\n" for s in spans)
        with self.lock:
            self.out.write(lines)
            self.out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self.lock:
            self.out.close()


class Tracer:
    """Records one hop's spans for one process; ``every`` 0 makes it a no-op that costs one comparison."""

    def __init__(self, settings: Settings, service: str, hop: str, shard: str) -> None:
        self.every = max(0, settings.trace_every)
        self.hop, self.shard = hop, shard
        # a feed's or a persister's span has no child, and several of them hang under one engine span: their ids
        # carry the service, so two feeds' spans of one command do not collide
        self.own = hop if hop in PARENT.values() else f"{hop}/{service}"
        self.provider: TracerProvider | None = None
        if not self.every:
            return
        self.ids = _DerivedIds()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=self.ids)
        exporter: SpanExporter
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            exporter = OTLPSpanExporter()
        else:
            exporter = JsonLinesExporter(Path(settings.trace_dir) / f"{service}.jsonl")
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("mercury")

    def sampled(self, first: int, last: int) -> range:
        """The traced in_seqs in [first, last]: empty unless tracing is on."""
        every = self.every
        if not every or last < first:
            return range(0)
        return range(-(-first // every) * every, last + 1, every)

    def span(self, in_seq: int, name: str, start_ns: int, end_ns: int,
             attributes: Mapping[str, str | int] | None = None) -> None:  # fmt: skip
        """The hop's span of command ``in_seq``, a child of the previous hop's (derived) span."""
        if self.provider is None:
            return
        shard, hop = self.shard, self.hop
        self.ids.next.span = span_id(shard, in_seq, self.own)
        self.ids.next.trace = trace_id(shard, in_seq)
        parent = PARENT.get(hop)
        context = None
        if parent is not None:
            remote = SpanContext(trace_id(shard, in_seq), span_id(shard, in_seq, parent), is_remote=True,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED))  # fmt: skip
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        attrs: dict[str, str | int] = {"mercury.in_seq": in_seq, "mercury.shard": shard, "mercury.hop": hop}
        if attributes:
            attrs.update(attributes)
        s = self.tracer.start_span(name, context=context, start_time=start_ns, attributes=attrs)
        s.end(end_time=max(end_ns, start_ns))

    def close(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes what the batch processor holds
