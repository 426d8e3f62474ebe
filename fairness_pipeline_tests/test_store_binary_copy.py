"""Binary COPY reader against a real PostgreSQL server."""

from __future__ import annotations

import numpy as np
import pytest

from fairness_pipeline.store.binary_copy import parse_binary_copy, read_binary_copy, read_binary_records

COLUMNS = (("a", "int2"), ("b", "int4"), ("c", "int8"), ("d", "float8"))


def _copy(select: str) -> str:
    return f"COPY ({select}) TO STDOUT WITH (FORMAT binary)"


def test_reads_every_type_exactly(conn) -> None:
    with conn.cursor() as cur:
        arrays = read_binary_copy(
            cur,
            _copy(
                "SELECT i::int2, (-i * 70000)::int4, (i::int8 << 40), i / 3.0::float8 "
                "FROM generate_series(-2, 1000) AS i ORDER BY i"
            ),
            COLUMNS,
        )
    i = np.arange(-2, 1001)
    assert arrays["a"].dtype == np.int16 and (arrays["a"] == i).all()
    assert (arrays["b"] == -i * 70000).all()
    assert (arrays["c"] == i.astype(np.int64) << 40).all()
    assert np.array_equal(arrays["d"], i / 3.0)  # the server's doubles, bit for bit
    assert arrays["d"].dtype.byteorder in ("=", "<") or arrays["d"].dtype.isnative


def test_empty_result(conn) -> None:
    with conn.cursor() as cur:
        arrays = read_binary_copy(cur, _copy("SELECT 1::int2, 1::int4, 1::int8, 1::float8 WHERE false"), COLUMNS)
    assert all(len(values) == 0 for values in arrays.values())


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ("SELECT 1::int2, NULL::int4, 1::int8, 1::float8", "NULL"),
        ("SELECT 1::int2, 1::int8, 1::int4, 1::float8", "column 'b' is NULL or not int4"),  # same row size
        ("SELECT 1::int2, 1::int4, 1::int8", "bytes each"),
        ("SELECT 1::int2, 'abc'::text, 1::int8, 1::float8", "bytes each"),
    ],
)
def test_refuses_rows_of_another_shape(conn, select: str, message: str) -> None:
    with conn.cursor() as cur, pytest.raises(ValueError, match=message):
        read_binary_copy(cur, _copy(select), COLUMNS)


def test_refuses_what_is_not_a_binary_copy() -> None:
    with pytest.raises(ValueError, match="signature"):
        parse_binary_copy(b"a,b\n1,2\n", COLUMNS)
    with pytest.raises(ValueError, match="one of"):
        parse_binary_copy(b"", (("a", "text"),))


def test_records_with_large_values_text_and_nulls(conn) -> None:
    payload = np.arange(250_000, dtype=">f4")  # 1 MB, far beyond one network packet
    with conn.cursor() as cur:
        statement = cur.mogrify(
            _copy("SELECT * FROM (VALUES ('t-é'::text, 7::int4, %(b)s::bytea), (NULL, NULL, NULL)) AS v"),
            {"b": payload.tobytes()},
        ).decode()
        rows = read_binary_records(cur, statement, ("text", "int4", "bytea"))
        with pytest.raises(ValueError, match="kinds must be among"):
            read_binary_records(cur, statement, ("text", "int4", "jsonb"))
        with pytest.raises(ValueError, match="do not have 2 fields"):
            read_binary_records(cur, statement, ("text", "int4"))
    (text, number, data), nulls = rows
    assert (text, number) == ("t-é", 7) and np.array_equal(np.frombuffer(data, dtype=">f4"), payload)
    assert nulls == (None, None, None)
