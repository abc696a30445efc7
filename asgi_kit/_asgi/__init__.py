"""The ground floor every layer stands on: ASGI types, header helpers, path filter,
route-template resolver and the request-scoped context (request id, trace ids, principal).

Nothing here imports an optional dependency or a web framework.
"""
