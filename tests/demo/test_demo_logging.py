"""The demo's logging configuration: uvicorn's loggers and every other one write JSON lines."""

from __future__ import annotations

import io
import json
import logging
import logging.config

from asgi_kit.cli.demo import log_config


def test_log_config_routes_uvicorn_and_root_through_the_json_formatter() -> None:
    """uvicorn.error, uvicorn.access and the root logger all use the kit's JSON handler."""
    config = log_config("WARNING")
    assert config["root"] == {"handlers": ["json"], "level": "WARNING"}
    assert config["loggers"]["uvicorn"]["handlers"] == ["json"]
    assert config["loggers"]["uvicorn.access"]["handlers"] == ["json"]
    assert config["loggers"]["uvicorn.error"].get("propagate", True)  # through "uvicorn"
    assert config["formatters"]["json"]["()"].endswith("JsonLogFormatter")


def test_records_and_tracebacks_are_single_json_lines() -> None:
    """A warning and an exception with its traceback each come out as one JSON object."""
    config = log_config("INFO")
    # Built from the configuration's own names, without dictConfig: that would reset the
    # handlers of the whole test process.
    resolve = logging.config.BaseConfigurator({}).resolve
    formatter_config = dict(config["formatters"]["json"])
    formatter = resolve(formatter_config.pop("()"))(**formatter_config)
    stream = io.StringIO()
    handler = resolve(config["handlers"]["json"]["class"])(stream=stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("asgi-kit-demo-log-test")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("upstream call failed", extra={"upstream_status": 404})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("Exception in ASGI application")
    finally:
        log.removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["message"] for r in records] == ["upstream call failed", "Exception in ASGI application"]
    assert records[0]["upstream_status"] == 404 and records[0]["service"] == "asgi-kit-demo"
    assert "Traceback" in records[1]["exc_info"] and "RuntimeError: boom" in records[1]["exc_info"]
