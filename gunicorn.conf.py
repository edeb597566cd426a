"""Gunicorn settings for one Dana web instance: `gunicorn -c gunicorn.conf.py main:app`.

Production runs several of these instances (one per port or container) behind a load
balancer with sticky sessions, plus N `flask --app main worker` processes, PostgreSQL and
Redis; see docs/realtime.md. Every value can be overridden from the environment (or on the
command line, which wins over this file).

This file is read by gunicorn's master process. It builds no app there (see on_starting):
the worker builds its own, so no Redis or database connection crosses a fork.
"""
import os
import sys

from gunicorn.glogging import Logger

# The project's modules (the app, utils) next to this file: gunicorn reads this file before
# it puts the project on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flask import Flask

from app import _connect_redis
from utils.config import ConfigError, load_settings
from utils.logging import RedactSecretsFilter, redact_secrets

# Where to listen: the same HOST/PORT settings as `python main.py` (README "Configuration").
# Behind a load balancer on another host, set HOST=0.0.0.0.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"

# Socket.IO keeps per-connection state (the Engine.IO session) in the process that accepted
# it, and a long-polling client sends several HTTP requests that must all reach that same
# process. Gunicorn's own load balancing between workers is not sticky, so an instance runs
# exactly ONE worker process; scale out by running more instances behind a sticky load
# balancer, with REDIS_URL set so that an event emitted anywhere reaches every instance.
workers = 1

# Flask-SocketIO in threading mode (utils/realtime.py) with simple-websocket: gthread is the
# gunicorn worker that serves it, WebSocket transport included. Each open WebSocket holds one
# thread for its whole life, so `threads` bounds the number of connected clients per instance
# (plus the plain HTTP requests in flight): size it for your connections per instance.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "50"))

# For gthread this is a liveness check of the worker process (its main loop must report to the
# master), not a per-request limit: long-lived WebSocket threads do not trip it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))

# On SIGTERM (deploy, scale-in) finish in-flight requests for this long, then exit. Open
# WebSockets are cut at the end of it; Socket.IO clients reconnect (to another instance).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))

# Idle keep-alive connections from the load balancer: a bit longer than a typical LB's
# health-check/idle interval so the LB, not gunicorn, decides when to close them.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# The longest request line gunicorn accepts (its maximum; the default is 4094). Dana itself
# answers a URI over 8,000 characters with a JSON 414 (utils/http.py); only a request line
# over this limit gets gunicorn's own error page.
limit_request_line = 8190

# No max_requests: recycling the worker would drop every open WebSocket of this instance.
max_requests = 0

# Load the app in the worker, not in the master: Redis and database connections must not be
# shared across a fork. (With one worker preloading saves nothing anyway.)
preload_app = False

# The heartbeat file on a RAM disk where there is one (containers: a disk-backed /tmp can
# block the heartbeat's fchmod and get a healthy worker killed).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Gunicorn >= 25 opens a control socket at one fixed path per user; several instances on one
# host would fight over it. Dana does not use gunicornc, so it is off.
control_socket_disable = True

# X-Forwarded-Proto (is the client on https?) is trusted only from these addresses: set it
# to the load balancer's address(es). Gunicorn does not rewrite REMOTE_ADDR from
# X-Forwarded-For; see docs/realtime.md about client addresses behind the balancer.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs to stdout/stderr (the container runtime collects them). The access log carries the
# request id the app assigns or accepts (X-Request-ID, echoed in the response) so an access
# line can be matched with the application's log lines and with webhook_events.request_id;
# %(L)s is the request time in seconds.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
access_log_format = ('%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s '
                     '"%(f)s" "%(a)s"')


class RedactingLogger(Logger):
    """Gunicorn's logger with secret query parameters (Meta's hub.verify_token, any *token,
    *secret or *password) replaced by [redacted] in the request line, query string and
    referrer of access lines, and in error-log lines (e.g. an invalid request line).
    """

    def setup(self, cfg):
        """Gunicorn's set-up, plus the redacting filter on the error log."""
        super().setup(cfg)
        self.error_log.addFilter(RedactSecretsFilter())

    def atoms(self, resp, req, environ, request_time):
        """The access-log atoms with secrets redacted from every URL-bearing one."""
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_secrets(atoms[key])
        return atoms


logger_class = RedactingLogger

proc_name = f"dana-web-{os.environ.get('PORT', '5000')}"


def on_starting(server):
    """Check the settings and Redis once in the master, before any worker boots.

    A worker that cannot build the app (main.py exits with status 2 on a configuration
    error) would otherwise be restarted by the master forever, printing the same error. Here
    the same error stops gunicorn at once with status 2, named like `python main.py` names it.
    No app is built here; the throwaway Redis client is closed before any fork.
    """
    probe = Flask("dana-preflight")
    try:
        _connect_redis(probe, load_settings())
    except ConfigError as exc:
        print(f"dana: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    client = probe.extensions.pop("dana_redis", None)
    if client is not None:
        client.close()


def post_worker_init(worker):
    """Inline automation: start this worker's event dispatcher now, so its start-up sweep
    runs what a previous process left unfinished, before any delivery arrives.
    """
    from services import automation_queue
    from utils.config import current_settings

    app = worker.wsgi
    if current_settings(app).AUTOMATION_QUEUE == "inline":
        automation_queue.start(app)
