"""Server administration: database health."""
from app.db import database


def database_problem() -> str | None:
    """None when the database answers a trivial query, else a one-line description."""
    try:
        with database.connection_context():
            database.execute_sql("SELECT 1").fetchone()
    except Exception as error:  # any driver error means "unhealthy", reported not raised
        return f"{type(error).__name__}: {str(error).strip() or 'no detail'}"
    return None
