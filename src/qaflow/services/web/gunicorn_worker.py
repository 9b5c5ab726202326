"""The api's gunicorn worker: gevent, with every connection's reads bounded in time.

Why gevent: gunicorn's design notes say the sync and gthread workers assume a buffering
proxy in front; facing clients directly, each slow or idle connection holds a thread, and
a few dozen of them (issue 10: 40 partial request lines) starve everyone. An async worker
gives each connection a greenlet instead, so they cost memory, not capacity
(https://docs.gunicorn.org/en/stable/design.html#choosing-a-worker-type).

Bounds, per connection:

- the request line and headers must arrive within ``keepalive`` seconds (gunicorn's async
  workers wrap each request's parse in ``gevent.Timeout(keepalive)``), else the connection
  is closed without a reply: partial request lines, trickled headers, binary garbage
  without a line end, and idle keep-alive connections all end there;
- no single read or write may wait longer than :data:`IO_IDLE_S` (a socket timeout), so a
  body that stops arriving ends the request with 408 instead of holding it forever.

PostgreSQL's libpq blocks in C; :func:`psycogreen.gevent.patch_psycopg` makes psycopg2
wait through gevent, so one slow query holds its own greenlet, not the worker. Redis and
Kafka clients are pure Python and cooperate once gevent has patched the standard library.

Errors that gunicorn writes itself (400, 414, 431 on bad framing) are problem documents, as
with every worker class: :mod:`qaflow.services.web.gunicorn_errors`, installed after the fork.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

IO_IDLE_S = 10.0  # longest wait for one read or write on a client socket (body, response)


class QaflowGeventWorker(GeventWorker):
    def patch(self) -> None:
        super().patch()  # gevent.monkey.patch_all(), before the app is imported
        try:
            from psycogreen.gevent import patch_psycopg
        except ImportError:  # pragma: no cover - psycogreen comes with qaflow[services]
            return
        patch_psycopg()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        # GeventWorker.handle would make the socket blocking without a timeout.
        client.settimeout(IO_IDLE_S)
        AsyncWorker.handle(self, listener, client, addr)
