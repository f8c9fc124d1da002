"""The Failed page's queries with many failed jobs: how long the page's grouping and its count
take, and their plans (EXPLAIN ANALYZE).

Fills a private PostgreSQL (unless --database-url is given, whose jobs, if any, are kept)
with --jobs failed jobs over the last week at two webhooks, in 20 kinds of failure: of every
hundred, --varied have an error naming a user id, a time or a long number (each error a
different text), the rest one plain error per kind ("HTTP 400"). Then runs the /failed page's
queries five times each and prints the median, the slowest and (--plans) the plan of a run.

    python -m bench.failed [--jobs 200000] [--varied 90] [--plans]
"""

import argparse
import asyncio
import statistics
import time

from bench.harness import database, prepare
from engine import specs
from engine.control import failures
from engine.db import connection
from engine.store import jobs

_FILL = [
    """
    INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,
                      received_at, created_at, message_id, event_type, event_name, request)
    SELECT d.id, s.id, g %% 64, 'user-' || g %% 10000, '1'::xid8, g,
           now() - interval '7 days' * (1 - g::float8 / %(jobs)s), now() - interval '7 days'
               * (1 - g::float8 / %(jobs)s), 'bench-' || g, 'track', 'Event ' || g %% 50,
           json_build_object('method', 'POST', 'url', d.config->>'webhookUrl',
                             'body', json_build_object('userId', 'user-' || g %% 10000))
    FROM generate_series(1, %(jobs)s) AS g, sources s, destinations d
    WHERE d.name = CASE WHEN g %% 3 = 0 THEN 'hook b' ELSE 'hook a' END
    """,
    """
    INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state, at,
                              status_code, error, response)
    SELECT id, created_at, destination_id, 1, 'aborted', created_at + interval '20 ms',
           400 + id %% 20,
           CASE WHEN id %% 100 >= %(varied)s THEN 'HTTP ' || 400 + id %% 20
                WHEN id %% 3 = 0 THEN 'HTTP ' || 400 + id %% 20 || ': no such user '
                     || md5(id::text)::uuid
                WHEN id %% 3 = 1 THEN 'HTTP ' || 400 + id %% 20 || ': rate limited until '
                     || to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                ELSE 'HTTP ' || 400 + id %% 20 || ': order ' || id || ' is unknown' END,
           '{"error": "refused"}'
    FROM jobs
    """,
]


async def fill(url: str, count: int, varied: int) -> None:
    await prepare(url, [
        specs.DestinationSpec(name=name, type="webhook",
                              config={"webhookUrl": f"https://{name[-1]}.example.com/in"})
        for name in ("hook a", "hook b")
    ])  # fmt: skip
    async with connection(url) as conn:
        await conn.set_autocommit(True)
        if await (await conn.execute("SELECT 1 FROM jobs LIMIT 1")).fetchone():
            return  # filled before (--database-url): measured again, after a change
        for statement in _FILL:
            await conn.execute(statement, {"jobs": count, "varied": varied})
        await conn.execute("VACUUM ANALYZE")


async def measure(url: str, plans: bool) -> None:
    async with connection(url) as conn:
        until = await failures.now(conn)
        which = jobs.Failing(until=until)
        grouped = jobs.Failing(until=until, destination="hook a")
        queries = {
            "groups, every destination": (which._query("failed_groups"),
                                          {**which._params(None, None), "groups": 100}),
            "groups, one destination": (grouped._query("failed_groups"),
                                        {**grouped._params(None, None), "groups": 100}),
            "count": (which._query("count_failed"), which._params(None, None)),
        }  # fmt: skip
        for name, (query, params) in queries.items():
            took = []
            for _ in range(5):
                started = time.perf_counter()
                await conn.execute(query, params)
                took.append(time.perf_counter() - started)
            print(f"{name:28} median {statistics.median(took) * 1000:7.0f} ms, slowest "
                  f"{max(took) * 1000:7.0f} ms")  # fmt: skip
            if plans:
                cur = await conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + query.encode(), params)
                print("\n".join(row[0] for row in await cur.fetchall()), end="\n\n")
        started = time.perf_counter()
        found = await failures.groups(conn, failures.Selection(), until)
        print(f"{'failures.groups (the page)':28} {(time.perf_counter() - started) * 1000:7.0f} ms"
              f", {len(found)} groups")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--varied", type=int, default=90, help="errors with ids, per hundred")
    parser.add_argument("--database-url")
    parser.add_argument("--plans", action="store_true", help="print each query's plan")
    args = parser.parse_args()
    with database(args.database_url) as url:
        started = time.perf_counter()
        asyncio.run(fill(url, args.jobs, args.varied))
        print(f"filled {args.jobs:,} failed jobs in {time.perf_counter() - started:.0f} s")
        asyncio.run(measure(url, args.plans))


if __name__ == "__main__":
    main()
