"""Pool connections are in autocommit mode: one round trip per store statement, no BEGIN/COMMIT."""

from __future__ import annotations

from asgi_kit.database import new_postgres_pool


async def test_pool_connections_autocommit(database_url: str) -> None:
    """A borrowed connection is autocommit and idle outside an explicit transaction."""
    pool = await new_postgres_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.connection() as conn:
            assert conn.autocommit
            await conn.execute("SELECT 1")
            assert conn.info.transaction_status.name == "IDLE"
            async with conn.transaction():
                assert conn.info.transaction_status.name == "INTRANS"
    finally:
        await pool.close()
