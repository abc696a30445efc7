"""``load_settings``: defaults < files (later over earlier) < environment < overrides.

Each source is read into a plain dict and merged here, not inside pydantic-settings, so
that a validation error can say which source gave the bad value.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from asgi_kit.config.errors import ConfigError, FieldProblem
from asgi_kit.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, KitSettings

Provenance = dict[tuple[str, ...], str]


def load_settings(*files: str | os.PathLike[str], **overrides: Any) -> KitSettings:
    """Load settings from files, the environment and keyword overrides.

    Args:
        files: TOML (``.toml``), JSON (``.json``) or dotenv (``.env`` / ``*.env``) files,
            later ones over earlier ones. A missing file is an error, not silently skipped.
        overrides: top-level fields or whole sections (``jwt={"secret": ...}``); highest priority.

    Raises:
        ConfigError: listing every invalid field with its source and the reason.
    """
    merged: dict[str, Any] = {}
    provenance: Provenance = {}
    problems: list[FieldProblem] = []

    for file in files:
        path = Path(file)
        try:
            data = _read_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        _merge(merged, data, provenance, f"file {path}")

    env_data = EnvSettingsSource(
        KitSettings, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, case_sensitive=False
    )()
    _merge(merged, env_data, provenance, "environment")
    _merge(merged, dict(overrides), provenance, "overrides")

    if problems:
        raise ConfigError(problems)
    try:
        return KitSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError.from_validation_error(exc, provenance) from None


def _read_file(path: Path) -> dict[str, Any]:
    where = f"file {path}"
    if not path.is_file():
        raise ConfigError([FieldProblem("-", where, "file not found")])
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ConfigError([FieldProblem("-", where, "a JSON settings file must hold an object")])
            return data
        if suffix == ".env" or path.name.endswith(".env") or path.name.startswith(".env"):
            return DotEnvSettingsSource(
                KitSettings,
                env_file=path,
                env_prefix=ENV_PREFIX,
                env_nested_delimiter=ENV_NESTED_DELIMITER,
                case_sensitive=False,
            )()
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        # The decoder's position is useful; its excerpt of the text could hold a secret.
        reason = f"cannot be parsed ({type(exc).__name__} at line {getattr(exc, 'lineno', '?')})"
        raise ConfigError([FieldProblem("-", where, reason)]) from None
    raise ConfigError([FieldProblem("-", where, "unknown format: use .toml, .json or .env")])


def _merge(target: dict[str, Any], source: Mapping[str, Any], provenance: Provenance, where: str) -> None:
    for key, value in source.items():
        _merge_at(target, (str(key).lower(),), value, provenance, where)


def _merge_at(
    target: dict[str, Any], path: tuple[str, ...], value: Any, provenance: Provenance, where: str
) -> None:
    key = path[-1]
    if isinstance(value, Mapping):
        existing = target.get(key)
        if not isinstance(existing, dict):
            existing = {}
            target[key] = existing
        for sub_key, sub_value in value.items():
            _merge_at(existing, (*path, str(sub_key).lower()), sub_value, provenance, where)
        provenance.setdefault(path, where)
        return
    target[key] = value
    provenance[path] = where


__all__ = ["load_settings"]
