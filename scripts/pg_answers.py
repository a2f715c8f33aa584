"""Exit 0 when a PostgreSQL server answers at the URL given, 1 otherwise (3 s at most)."""

import asyncio
import sys

import asyncpg


async def answers(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(answers(sys.argv[1])) else 1)
