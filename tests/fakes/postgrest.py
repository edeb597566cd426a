"""A minimal PostgREST-compatible loopback server on real PostgreSQL (test infrastructure).

Like Supabase's API, each request: checks `apikey` and verifies the JWT in `Authorization`
(HS256 with the project's JWT secret), opens a transaction, switches to the token's role with
SET LOCAL ROLE (anon, authenticated or service_role: never the superuser or a table owner),
sets request.jwt.claims (what auth.uid() reads), runs one statement with bound parameters and
answers as PostgREST does: a JSON array of rows, or {"code", "message", "details", "hint"}
with PostgREST's status for the SQLSTATE (409 for 23505 and 23503, 403 for 42501, ...).

It understands exactly the shapes utils/store/supabase_backend.py sends, and answers 400
PGRST100 to anything else, so the backend cannot quietly come to depend on more:

  GET    /rest/v1/<table>?select=&<filters>&order=&limit=
  HEAD   the same with Prefer count=exact: no body, just the count (Content-Range)
  POST   /rest/v1/<table>             one JSON object; ?select= for the returned row
  PATCH  /rest/v1/<table>?<filters>   JSON object of changes; ?select=
  DELETE /rest/v1/<table>?<filters>
  POST   /rest/v1/rpc/search_conversations  {"q": ...} with ?select=&<filters>&order=&limit=

  select   `*`, column names, one to-one embedding `alias:contacts(columns)` on conversations
  filters  eq, lt, lte, ilike (`*` = `%`), cs.{...} (array contains), in.(...), is.null;
           or=(...) of those and and(...), values optionally "double-quoted" (keyset, search)
  order    column.asc|desc, comma-separated;  limit  N
  Prefer   return=representation; count=exact on GET and HEAD (Content-Range: first-last/N)
  PATCH and DELETE need a filter, as with Supabase's pg-safeupdate.

reset() empties the tables and puts back the rows the migrations seed (the default plans),
as they were when the fake started.

Every request is recorded in `requests` (method, path, params, body, role, sub, authorization).

It runs its own server rather than tests/fakes/rest.py's FakeRest: FakeRest answers under one
lock, which would serialize the requests and hide the races the concurrency tests look for;
and PostgREST's query is an ordered list with repeated keys, its answers are PostgreSQL's own
JSON text, and it answers HEAD.
"""
from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

import jwt
import psycopg
from psycopg import sql

TABLES = {"contacts", "conversations", "messages", "tasks", "subscription_tiers",
          "user_subscriptions"}
# tables whose rows come from the migrations (reset() restores them); the rest start empty
SEEDED = ("subscription_tiers",)
# rpc name -> (table whose rows it returns, its argument names)
FUNCTIONS = {"search_conversations": ("conversations", {"q"})}
# (table, embedded table) -> column pairs (ours, theirs) of the foreign key between them
EMBEDS = {("conversations", "contacts"): (("contact_id", "id"), ("owner_id", "owner_id"))}
ROLES = {"anon", "authenticated", "service_role"}
OPERATORS = {"eq": "=", "lt": "<", "lte": "<=", "ilike": "ILIKE", "cs": "@>"}
# PostgREST's HTTP status for a SQLSTATE; other errors answer 400
STATUS_BY_SQLSTATE = {"23505": 409, "23503": 409, "42501": 403, "42P01": 404, "42883": 404}
NAME = re.compile(r"[a-z_][a-z0-9_]*")


class PostgrestError(Exception):
    """An error answer in PostgREST's shape."""

    def __init__(self, status: int, code: str, message: str, details=None, hint=None):
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "details": details, "hint": hint}


def _bad(message: str) -> PostgrestError:
    return PostgrestError(400, "PGRST100", message)


def _ident(name: str) -> sql.Identifier:
    if not NAME.fullmatch(name):
        raise _bad(f"not a column name: {name!r}")
    return sql.Identifier(name)


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes (select lists, logic trees)."""
    parts, current, depth, quoted, escaped = [], [], 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    """A value inside a logic tree or in.(...): "..." with backslash escapes, or bare."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.S)
    return value


def _condition(column: str, expression: str, in_tree: bool) -> tuple[sql.Composable, list]:
    """`column=op.value` (or `column.op.value` inside a tree) as SQL on alias t."""
    op, dot, value = expression.partition(".")
    if not dot:
        raise _bad(f"no operator in {expression!r}")
    col = sql.SQL("t.{}").format(_ident(column))
    params: list = []
    if op == "is":
        if value != "null":
            raise _bad("only is.null is supported")
        cond = sql.SQL("{} IS NULL").format(col)
    elif op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise _bad("in needs (values)")
        params = [_unquote(v) for v in _split(value[1:-1])]
        marks = sql.SQL(", ").join([sql.Placeholder()] * len(params))
        cond = sql.SQL("{} IN ({})").format(col, marks)
    elif op in OPERATORS:
        value = _unquote(value) if in_tree else value
        params = [value.replace("*", "%") if op == "ilike" else value]
        cond = sql.SQL("{} {} {}").format(col, sql.SQL(OPERATORS[op]), sql.Placeholder())
    else:
        raise _bad(f"unsupported operator {op!r}")
    return cond, params


def _tree(body: str, joiner: str) -> tuple[sql.Composable, list]:
    """The inside of or=(...) / and(...): conditions and nested and(...)."""
    conds, params = [], []
    for item in _split(body):
        nested = re.fullmatch(r"and\((.*)\)", item, flags=re.S)
        if nested:
            cond, more = _tree(nested.group(1), "and")
        else:
            column, dot, expression = item.partition(".")
            if not dot:
                raise _bad(f"bad logic tree item {item!r}")
            cond, more = _condition(column, expression, in_tree=True)
        conds.append(sql.SQL("({})").format(cond))
        params += more
    return sql.SQL(f" {joiner.upper()} ").join(conds), params


def _select_list(select: str, table: str) -> sql.Composable:
    """`*`, columns and to-one embeddings `alias:table(cols)` (a JSON object or null)."""
    items = []
    for item in _split(select):
        embed = re.fullmatch(r"(?:(\w+):)?(\w+)\(([^()]*)\)", item)
        if item == "*":
            items.append(sql.SQL("t.*"))
        elif embed:
            alias, other, columns = embed.group(1) or embed.group(2), embed.group(2), embed.group(3)
            if (table, other) not in EMBEDS:
                raise _bad(f"no relationship between {table} and {other}")
            inner = (sql.SQL("e.*") if columns in ("", "*") else sql.SQL(", ").join(
                sql.SQL("e.{}").format(_ident(c)) for c in _split(columns)))
            on = sql.SQL(" AND ").join(sql.SQL("e.{} = t.{}").format(_ident(theirs), _ident(ours))
                                       for ours, theirs in EMBEDS[(table, other)])
            items.append(sql.SQL("(SELECT row_to_json(_e) FROM (SELECT {} FROM public.{} e "
                                 "WHERE {}) _e) AS {}").format(inner, _ident(other), on,
                                                               _ident(alias)))
        else:
            items.append(sql.SQL("t.{}").format(_ident(item)))
    return sql.SQL(", ").join(items)


def _order(value: str) -> sql.Composable:
    terms = []
    for term in value.split(","):
        column, *modifiers = term.split(".")
        if modifiers not in ([], ["asc"], ["desc"]):
            raise _bad(f"unsupported order {term!r}")
        direction = sql.SQL("DESC" if modifiers == ["desc"] else "ASC")
        terms.append(sql.SQL("t.{} {}").format(_ident(column), direction))
    return sql.SQL(", ").join(terms)


class _Query(NamedTuple):
    """The query string of a request, parsed."""
    select: str
    order: sql.Composable | None
    limit: int | None
    where: sql.Composable | None
    args: list


def _resource(method: str, path: str) -> tuple[str, str | None]:
    """(table whose rows are read or written, rpc function name or None)."""
    match = re.fullmatch(r"/rest/v1/(?:(rpc)/)?(\w+)", path)
    if not match:
        raise PostgrestError(404, "PGRST125", f"Invalid path {path}")
    name = match.group(2)
    if match.group(1):
        if name not in FUNCTIONS or method != "POST":
            raise PostgrestError(404, "PGRST202", f"Could not find the function public.{name}")
        return FUNCTIONS[name][0], name
    if name not in TABLES:
        raise PostgrestError(404, "42P01", f'relation "public.{name}" does not exist')
    return name, None


def _parse(params: list[tuple[str, str]]) -> _Query:
    select, order, limit, conds, args = "*", None, None, [], []
    for key, value in params:
        if key == "select":
            select = value
        elif key == "order":
            order = _order(value)
        elif key == "limit":
            if not value.isdigit():
                raise _bad("limit must be a number")
            limit = int(value)
        elif key == "or":
            if not (value.startswith("(") and value.endswith(")")):
                raise _bad("or needs (conditions)")
            cond, more = _tree(value[1:-1], "or")
            conds.append(cond)
            args += more
        elif key in ("and", "columns", "on_conflict", "offset") or "." in key:
            raise _bad(f"unsupported query parameter {key!r}")
        else:
            cond, more = _condition(key, value, in_tree=False)
            conds.append(cond)
            args += more
    where = sql.SQL(" AND ").join(sql.SQL("({})").format(c) for c in conds) if conds else None
    return _Query(select, order, limit, where, args)


def build_statement(method: str, path: str, params: list[tuple[str, str]],
                    body: object) -> tuple[sql.Composable, list]:
    """The one SQL statement for a request; it returns the JSON array of result rows."""
    table, function = _resource(method, path)
    query = _parse(params)
    columns = _select_list(query.select, table)
    if method in ("GET", "HEAD") or function:
        rows, args = _read(table, function, query, columns, body)
        return sql.SQL("SELECT coalesce(json_agg(_r), '[]'::json)::text FROM ({}) _r").format(
            rows), args
    write, args = _write(method, table, query, body)
    # a data-modifying WITH must be at the top level
    return sql.SQL("WITH _res AS ({}) SELECT coalesce(json_agg(_r), '[]'::json)::text "
                   "FROM (SELECT {} FROM _res AS t) _r").format(write, columns), args


def build_count(method: str, path: str,
                params: list[tuple[str, str]]) -> tuple[sql.Composable, list]:
    """For Prefer count=exact: the number of rows the read matches, ignoring its limit."""
    table, function = _resource(method, path)
    if function or method not in ("GET", "HEAD"):
        raise _bad("count=exact is supported on table reads only")
    query = _parse(params)
    return (sql.SQL("SELECT count(*) FROM public.{} AS t WHERE {}").format(
        sql.Identifier(table), query.where or sql.SQL("true")), query.args)


def _read(table: str, function: str | None, query: _Query, columns: sql.Composable,
          body: object) -> tuple[sql.Composable, list]:
    """SELECT from the table, or from the rpc function called with the body's arguments."""
    args: list = []
    if function:
        arg_names = FUNCTIONS[function][1]
        if not isinstance(body, dict) or set(body) != arg_names:
            raise _bad(f"{function} takes exactly {sorted(arg_names)}")
        named = sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(a), sql.Placeholder())
                                   for a in body)
        source = sql.SQL("public.{}({})").format(sql.Identifier(function), named)
        args = list(body.values())
    elif body is not None:
        raise _bad("GET has no body")
    else:
        source = sql.SQL("public.{}").format(sql.Identifier(table))
    rows = sql.SQL("SELECT {} FROM {} AS t WHERE {}").format(columns, source,
                                                             query.where or sql.SQL("true"))
    if query.order is not None:
        rows = sql.SQL("{} ORDER BY {}").format(rows, query.order)
    if query.limit is not None:
        rows = sql.SQL("{} LIMIT {}").format(rows, sql.Literal(query.limit))
    return rows, args + query.args


def _write(method: str, table: str, query: _Query, body: object) -> tuple[sql.Composable, list]:
    """INSERT (one object), UPDATE or DELETE ... RETURNING t.*; the row values come from the
    JSON body through json_populate_record, as in PostgREST."""
    target = sql.SQL("public.{}").format(sql.Identifier(table))
    if query.order is not None or query.limit is not None:
        raise _bad("order/limit on a write is not supported")
    if method in ("PATCH", "DELETE") and query.where is None:
        # Supabase runs PostgREST with pg-safeupdate: no UPDATE/DELETE without a WHERE
        raise PostgrestError(400, "21000", f"{method} requires a WHERE clause")
    if method == "DELETE":
        return (sql.SQL("DELETE FROM {} AS t WHERE {} RETURNING t.*").format(target, query.where),
                query.args)
    if method not in ("POST", "PATCH"):
        raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
    if not isinstance(body, dict) or not body:
        raise _bad("the body must be one non-empty JSON object")
    names = [_ident(c) for c in body]
    record = sql.SQL("json_populate_record(NULL::{}, {}::json)").format(target, sql.Placeholder())
    if method == "POST":
        if query.where is not None:
            raise _bad("filters on insert are not supported")
        listed = sql.SQL(", ").join(names)
        return (sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} RETURNING t.*").format(
            target, listed, listed, record), [json.dumps(body)])
    sets = sql.SQL(", ").join(sql.SQL("{} = _b.{}").format(n, n) for n in names)
    return (sql.SQL("UPDATE {} AS t SET {} FROM {} AS _b WHERE {} RETURNING t.*").format(
        target, sets, record, query.where), [json.dumps(body), *query.args])


def _pg_error(exc: psycopg.Error, role: str) -> PostgrestError:
    state = exc.sqlstate or "XX000"
    server_side = state[:2] in ("08", "53", "57", "58", "XX")
    status = STATUS_BY_SQLSTATE.get(state, 500 if server_side else 400)
    if state == "42501" and role == "anon":
        status = 401
    diag = exc.diag
    return PostgrestError(status, state, diag.message_primary or str(exc), diag.message_detail,
                          diag.message_hint)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_GET(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {}
        try:
            status, payload, headers = self.server.fake.handle(self.command, self.path,
                                                               self.headers, raw)
        except PostgrestError as exc:
            status, payload = exc.status, json.dumps(exc.body)
        data = payload.encode() if payload is not None else b""
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        if self.command == "HEAD":  # no body, as HTTP requires
            data = b""
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, *args):  # keep test output clean
        pass


class PostgrestFake:
    """The server: start()/stop() (or a with block), `url` to give supabase-py, `requests`."""

    def __init__(self, dsn: str, jwt_secret: str):
        self.dsn = dsn
        self.jwt_secret = jwt_secret
        self.requests: list[dict] = []
        self._pool: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.service_key = self.mint("service_role")
        self.anon_key = self.mint("anon")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self._seed = {table: conn.execute(
                sql.SQL("select coalesce(json_agg(t), '[]')::text from public.{} t")
                .format(sql.Identifier(table))).fetchone()[0] for table in SEEDED}

    def mint(self, role: str, sub: str | None = None, ttl: int = 3600) -> str:
        """A token signed with the project's secret, like Supabase's keys and user tokens."""
        now = datetime.now(timezone.utc)
        claims = {"role": role, "iss": "supabase", "iat": now, "exp": now + timedelta(seconds=ttl)}
        if sub:
            claims.update(sub=sub, aud="authenticated")
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def start(self) -> "PostgrestFake":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in self._pool:
                conn.close()
            self._pool.clear()

    def __enter__(self) -> "PostgrestFake":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Empty the tables and put the seeded rows back (as the database owner, outside the
        API), and clear the request log."""
        tables = sql.SQL(", ").join(sql.SQL("public.{}").format(sql.Identifier(t))
                                    for t in sorted(TABLES))
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.transaction():
            conn.execute(sql.SQL("truncate {}").format(tables))
            for table, rows in self._seed.items():
                conn.execute(sql.SQL("insert into public.{0} select * from "
                                     "json_populate_recordset(null::public.{0}, %s)")
                             .format(sql.Identifier(table)), [rows])
        self.requests.clear()

    # ----------------------------------------------------------------- requests
    def _verify(self, token: str) -> dict:
        try:
            return jwt.decode(token, self.jwt_secret, algorithms=["HS256"],
                              options={"verify_aud": False, "require": ["exp", "role"]})
        except jwt.ExpiredSignatureError:
            raise PostgrestError(401, "PGRST303", "JWT expired") from None
        except jwt.InvalidTokenError as exc:
            raise PostgrestError(401, "PGRST301", f"JWT invalid: {exc}") from None

    def _claims(self, headers) -> dict:
        """The verified claims of the request: the gateway's apikey check, then the JWT."""
        apikey = headers.get("apikey")
        if not apikey:
            raise PostgrestError(401, "PGRST301", "No API key found in request")
        self._verify(apikey)
        authorization = headers.get("Authorization") or ""
        if not authorization.startswith("Bearer "):
            raise PostgrestError(401, "PGRST301", "Authorization: Bearer <jwt> is required")
        claims = self._verify(authorization[len("Bearer "):])
        if claims["role"] not in ROLES:
            raise PostgrestError(401, "PGRST301", f"role {claims['role']!r} is not allowed")
        return claims

    @contextmanager
    def _connection(self):
        with self._lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = psycopg.connect(self.dsn, autocommit=True, options="-c TimeZone=UTC")
        try:
            yield conn
        finally:
            if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.close()
            else:
                with self._lock:
                    self._pool.append(conn)

    def handle(self, method: str, target: str, headers,
               raw: bytes) -> tuple[int, str | None, dict]:
        """Answer one request: (status, JSON text or None, extra response headers)."""
        url = urlsplit(target)
        params = parse_qsl(url.query, keep_blank_values=True)
        record = {"method": method, "path": url.path, "params": params, "body": None,
                  "authorization": headers.get("Authorization"), "role": None, "sub": None}
        self.requests.append(record)
        claims = self._claims(headers)
        record.update(role=claims["role"], sub=claims.get("sub"))
        for header in ("Accept-Profile", "Content-Profile"):
            if headers.get(header, "public") != "public":
                raise PostgrestError(406, "PGRST106", "only the public schema is exposed")
        accept = headers.get("Accept", "*/*")
        if accept not in ("*/*", "application/json"):
            raise _bad(f"unsupported Accept {accept!r}")
        prefer = {p.strip() for p in (headers.get("Prefer") or "").split(",") if p.strip()}
        if prefer - {"return=representation", "count=exact"}:
            raise _bad(f"unsupported Prefer {sorted(prefer)}")
        if method == "HEAD" and "count=exact" not in prefer:
            raise _bad("HEAD is supported with Prefer count=exact only")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise PostgrestError(400, "PGRST102", "Empty or invalid json") from None
        record["body"] = body

        query, args = build_statement(method, url.path, params, body)
        count = build_count(method, url.path, params) if "count=exact" in prefer else None
        with self._connection() as conn:
            try:
                with conn.transaction():
                    role = sql.Identifier(claims["role"])
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(role))
                    conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                                 [json.dumps(claims)])
                    result = conn.execute(query, args).fetchone()[0]
                    total = conn.execute(*count).fetchone()[0] if count else None
            except psycopg.Error as exc:
                raise _pg_error(exc, claims["role"]) from None
        extra = {}
        if total is not None:
            shown = len(json.loads(result))
            extra["Content-Range"] = f"0-{shown - 1}/{total}" if shown else f"*/{total}"
        if method == "POST" and not url.path.startswith("/rest/v1/rpc/"):
            return 201, result, extra
        return 200, (None if method == "HEAD" else result), extra
