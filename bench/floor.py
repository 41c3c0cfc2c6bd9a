"""The database floor: the SQL a request issues, replayed straight through pg8000.

The statements are captured with a SQLAlchemy `before_cursor_execute` listener during a warm-up
request (exactly the text and parameters the driver received), then replayed on a raw connection of
the same driver with the same session settings, in one transaction that is committed, as the
request's was. What the handler needs beyond that is the API's overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any
    many: bool

    def with_values(self, substitute: dict[Any, Any]) -> Statement:
        """The same statement with some parameter values swapped (e.g. the id of a row to delete)."""
        if not substitute or self.many or not isinstance(self.parameters, (tuple, list)):
            return self
        values = type(self.parameters)(substitute.get(v, v) if _hashable(v) else v for v in self.parameters)
        return Statement(self.sql, values, self.many)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class Capture:
    """Records every statement the engine sends while the block runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[Statement] = []

    def _record(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
    ) -> None:
        self.statements.append(Statement(statement, parameters, executemany))

    def __enter__(self) -> Capture:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


class Floor:
    """A raw pg8000 connection opened like the app's (same URL, driver module, driver settings and
    the role's settings)."""

    def __init__(self, engine: Engine) -> None:
        from chalicelib.db import tune_driver_connection

        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        cparams["application_name"] = "interactions-bench-floor"
        self.connection = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        tune_driver_connection(self.connection)
        # The statement timeout and the time zone come with the role, as for the app (db.py).

    def run(self, statements: list[Statement], substitute: dict[Any, Any] | None = None) -> None:
        cursor = self.connection.cursor()
        try:
            for statement in statements:
                statement = statement.with_values(substitute or {})
                if statement.many:
                    cursor.executemany(statement.sql, statement.parameters)
                else:
                    cursor.execute(statement.sql, statement.parameters)
                if cursor.description is not None:
                    cursor.fetchall()
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        self.connection.close()
