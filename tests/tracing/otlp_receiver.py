"""A minimal OTLP/HTTP trace receiver on loopback, for tests that export through the real exporter."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class Receiver:
    """A minimal OTLP/HTTP trace receiver: decodes every POST /v1/traces it gets."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self.changed = threading.Condition()

    def spans(self) -> list[tuple[Span, dict[str, Any]]]:
        """Every received span with its resource attributes."""
        found: list[tuple[Span, dict[str, Any]]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((span, resource) for span in scope_spans.spans)
        return found

    def wait_for_spans(self, count: int, timeout: float) -> list[tuple[Span, dict[str, Any]]]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.spans()) >= count, timeout)
            return self.spans()


def value_of(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


def attributes_of(span: Span) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in span.attributes}


@contextmanager
def run_receiver() -> Iterator[tuple[Receiver, str]]:
    """A receiver on a free loopback port and its URL, stopped when the block ends."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            encoding = self.headers.get("content-encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with state.changed:
                state.paths.append(self.path)
                state.content_types.append(self.headers.get("content-type", ""))
                state.requests.append(request)
                state.changed.notify_all()
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
