"""Exit 0 when the PostgreSQL URL given as the only argument accepts a connection."""

import sys

import psycopg

try:
    url = sys.argv[1].replace("psycopg3://", "postgresql://", 1)
    with psycopg.connect(url, connect_timeout=3) as conn:
        conn.execute("SELECT 1")
except Exception as exc:  # noqa: BLE001 - any failure means "not available"
    print(f"PostgreSQL not available: {type(exc).__name__}", file=sys.stderr)
    sys.exit(1)
sys.exit(0)
