from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("commissions", appauthor=False))


class Settings(BaseSettings):
    """Service settings, read from the environment; nothing connects at import time."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Field(
        default_factory=_default_data_dir, validation_alias="COMMISSIONS_DATA_DIR"
    )
    log_level: str = Field(default="INFO", validation_alias="COMMISSIONS_LOG_LEVEL")
    log_json: bool = Field(default=True, validation_alias="COMMISSIONS_LOG_JSON")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, validation_alias="COMMISSIONS_MAX_BODY")
    db_pool_size: int = Field(default=24, validation_alias="COMMISSIONS_DB_POOL_SIZE")
