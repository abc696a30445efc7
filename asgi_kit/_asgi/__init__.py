"""The ground floor every layer stands on: ASGI types, header helpers, path filter,
route-template resolver, the request-scoped context (request id, trace ids, principal) and the
response observer (one request's outcome, as the access log, the metrics and the span report it).

Nothing here imports an optional dependency or a web framework.
"""
