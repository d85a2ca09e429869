"""The bounds every request value is held to: one table, the same on SQLite and PostgreSQL.

A value outside its bound is a 422 naming the field and the bound, refused before anything
reaches the database, and each bound is in the OpenAPI document (``minimum``, ``maximum``,
``maxLength``, ``maxItems``, ``pattern``) through the field factories of
:mod:`app.schemas.base`. Why each number:

- **Integers** stored in an ``IntegerField`` column are PostgreSQL ``integer`` (32-bit) and
  SQLite ``INTEGER`` (64-bit): the common range is 32-bit. Integers that never reach a column
  but do reach SQL (``offset``) are held to PostgreSQL's ``bigint``, less one bit of room.
- **Strings** stored in a ``CharField`` column are PostgreSQL ``varchar(255)``; SQLite would
  store any length, so without the bound the two databases disagree. Run names, which are
  often made from parameters, get ``varchar(2000)`` and are bounded in bytes
  (:data:`RUN_NAME_MAX_BYTES`), the unit of PostgreSQL's limit on an index entry.
  ``TextField`` columns are unbounded on both; their strings are held to
  :data:`TEXT_MAX_LENGTH`, which is still below the request size limit
  (``MAX_CONTENT_LENGTH``) and above Prefect's largest log message. A state's ``message``
  (a client's exception text, of any length) is cut to that length instead of refused
  (:func:`cut`): refusing it refuses the transition, and a task that failed would crash
  without its retries.
- **Datetimes**: PostgreSQL ``timestamp`` and Python both reach year 9999, but a service adds
  intervals to the times it is given (schedules, retries, history buckets, cache expirations),
  which overflows Python's ``datetime`` near its end; a time before 1970 has no use here. So
  from 1970 to the end of year 8999, leaving millennia of room for arithmetic.
- **JSON**: nesting is bounded (:data:`JSON_MAX_DEPTH`): Python's parser and PostgreSQL's
  ``jsonb`` both have a recursion limit, and a body that reaches one is a 500. NaN and
  Infinity are not JSON, and PostgreSQL's ``jsonb`` refuses them (:mod:`app.schemas.json_body`).
- **Filter lists** (``any_``, ``not_any_``, ``all_``, ...) become one SQL parameter per item;
  SQLite allows 32,766 parameters in one statement, and a body combines up to about twenty
  lists, so each holds at most :data:`FILTER_LIST_MAX_ITEMS`.
"""

import datetime

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# limit/offset: ``limit`` is also held to the API_DEFAULT_LIMIT setting (see PagedBody).
LIMIT_MAX = INT32_MAX
OFFSET_MAX = INT64_MAX

# Strings.
NAME_MAX_LENGTH = 255  # every CharField column: PostgreSQL varchar(255)
# Flow and task run names, in bytes of UTF-8: their column is varchar(2000) on PostgreSQL
# (app.db), and an index entry must stay under its B-tree limit of 2,704 bytes.
RUN_NAME_MAX_BYTES = 2000
IDEMPOTENCY_KEY_MAX_LENGTH = 255  # flow_run.idempotency_key is a CharField
TEXT_MAX_LENGTH = 1_000_000  # TextField columns and JSON-stored strings with no column
FILTER_STRING_MAX_LENGTH = 2000  # one value of a filter criterion (any_, like_, ...): a run name
FILTER_LIST_MAX_ITEMS = 1000

# Datetimes (aware, compared in UTC): MIN inclusive, MAX exclusive.
UTC = datetime.UTC
DATETIME_MIN = datetime.datetime(1970, 1, 1, tzinfo=UTC)
DATETIME_MAX = datetime.datetime(9000, 1, 1, tzinfo=UTC)
# The same range as text, for the OpenAPI document: a year from 1970 to 8999.
DATETIME_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3})-"

# Seconds: retry delays, history buckets, schedule windows. 68 years.
SECONDS_MAX = float(INT32_MAX)
# History buckets: at least a second, at most a year, and at most HISTORY_MAX_INTERVALS of them.
HISTORY_INTERVAL_MIN_SECONDS = 1.0
HISTORY_INTERVAL_MAX_SECONDS = 366 * 24 * 3600.0
HISTORY_MAX_INTERVALS = 500

# JSON bodies.
JSON_MAX_DEPTH = 100

# What a 422 may echo of the request: its body only if it is this small, and each message and
# location part cut to this many characters; at most this many details.
ECHO_MAX_BYTES = 4096
EXCERPT_CHARS = 200
ERROR_DETAILS_MAX = 50


def cut(text, limit=TEXT_MAX_LENGTH):
    """``text`` whole if it has at most ``limit`` characters, else its start and a note of its
    full length, ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    note = f" [cut by the server: {len(text):,} characters in all]"
    return text[: limit - len(note)] + note


def excerpt(value, limit=EXCERPT_CHARS):
    """``value`` as text, cut to ``limit`` characters with a note of how long it was."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"
