"""Dashboard sign-in: with ``ORION_API_KEY`` set, the dashboard asks for that key.

- **Unset key**: the dashboard is open, as before; ``/login`` just goes to the dashboard.
- **Set key**: every dashboard request needs a signed-in session. ``/login`` shows a form
  (the key, labelled; CSRF-protected like every form; failures are throttled per address,
  see ``app.security``); the key is compared in constant time. Signing in clears the
  session (a fresh CSRF token too) and opens a server-side session
  (``app.services.dashboard_sessions``): the cookie, which Flask signs with ``SECRET_KEY``,
  holds its random token; the row holds the token's digest and a fingerprint of the key (an
  HMAC under ``SECRET_KEY``, never the key itself). A session ends after
  ``PERMANENT_SESSION_LIFETIME`` without a request, on sign-out (the row is deleted, so a
  copied cookie stops working too), and when the API key changes (the fingerprint no longer
  matches).
- **Not signed in**: a page request is redirected to ``/login?next=<where it was going>``;
  an htmx request gets 401 with ``HX-Redirect`` (htmx then loads the login page as a whole
  page instead of swapping a fragment of it in), ``next`` being the page the browser shows
  (``HX-Current-URL``); a POST without htmx also gets the redirect (its form is lost: it
  was made by a session that has expired).
- ``/logout`` (POST, CSRF-checked) ends the server-side session and clears the cookie's.

The API keeps its own check (``Authorization: Bearer``); the dashboard never calls the API.
"""

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import current_app, make_response, redirect, request, session, url_for

from app.blueprints.ui import bp, here, render
from app.services.dashboard_sessions import end_session, session_is_valid, start_session

SESSION_KEY = "signed_in"
_CACHE = "orion.signed_in"
# Endpoints reachable without signing in.
_OPEN_ENDPOINTS = frozenset({"ui.login_page", "ui.login"})


def _api_key():
    return current_app.config.get("API_KEY") or None


def key_matches(sent, key):
    """True if ``sent`` equals ``key`` (compared in constant time)."""
    return hmac.compare_digest(sent.encode(), key.encode())


def _fingerprint(key):
    """What a signed-in session holds: the key's HMAC under the app's secret key."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"orion-dashboard:" + key.encode(), hashlib.sha256).hexdigest()


def _lifetime():
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    return lifetime.total_seconds() if hasattr(lifetime, "total_seconds") else float(lifetime)


def signed_in():
    """True if the dashboard is open (no key) or this session signed in with the key and
    its server-side session still lives (looked up once per request)."""
    key = _api_key()
    if key is None:
        return True
    # Cached on the request (not on ``g``, which a test's app context shares between requests).
    cached = request.environ.get(_CACHE)
    if cached is None:
        token = session.get(SESSION_KEY)
        cached = request.environ[_CACHE] = isinstance(token, str) and session_is_valid(
            token, _fingerprint(key), _lifetime()
        )
    return cached


def _local_target(target):
    """``target`` if it is a path on this site (not ``//host`` or a full URL, and without
    control characters such as CR/LF, which would split the redirect's header), else the
    dashboard. Paths include a proxy's prefix (``X-Forwarded-Prefix``), as the browser sees
    them."""
    home = url_for("ui.dashboard_page")
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return home
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return home
    return target


def _here_for_htmx():
    """The page the browser shows, from htmx's ``HX-Current-URL`` (only its path and query,
    and only if it is on this site)."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if current.netloc and current.netloc != request.host:
        return url_for("ui.dashboard_page")
    path = current.path + (f"?{current.query}" if current.query else "")
    return _local_target(path)


def require_sign_in():
    """The response for a request that must sign in first, or None if it may go on (the
    blueprint's first before-request check)."""
    if request.endpoint in _OPEN_ENDPOINTS or signed_in():
        return None
    if request.headers.get("HX-Request") == "true":
        response = make_response("Sign in to continue.", 401)
        response.headers["HX-Redirect"] = url_for("ui.login_page", next=_here_for_htmx())
        return response
    target = here() if request.method == "GET" else url_for("ui.dashboard_page")
    return redirect(url_for("ui.login_page", next=_local_target(target)), 303)


@bp.get("/login")
def login_page():
    """The sign-in form (the dashboard itself when no key is set or already signed in)."""
    target = _local_target(request.args.get("next"))
    if _api_key() is None or signed_in():
        return redirect(target, 303)
    return render("ui/login.html", title="Sign in", next=target, error=None)


@bp.post("/login")
def login():
    """Check the key; sign in and go to ``next``, or show the form again with an error."""
    target = _local_target(request.form.get("next"))
    key = _api_key()
    if key is None:
        return redirect(target, 303)
    if not key_matches(request.form.get("api_key", ""), key):
        return render(
            "ui/login.html",
            status=401,
            title="Sign in",
            next=target,
            error="That is not this server's API key.",
        )
    session.clear()
    session[SESSION_KEY] = start_session(_fingerprint(key), _lifetime())
    session.permanent = True
    return redirect(target, 303)


@bp.post("/logout")
def logout():
    """Sign out: end the server-side session, clear the cookie's, show the sign-in form."""
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        end_session(token)
    session.clear()
    return redirect(url_for("ui.login_page"), 303)
