"""/login and /logout: the browser sign-in for the API's users (same checks, limits, audit)."""
from __future__ import annotations

from flask import g, redirect, request, url_for

from routes.pages.common import page_blueprint, render, safe_next, sign_in, sign_out
from routes.pages.forms import LoginForm
from services import users as users_service
from utils.errors import Unauthorized
from utils.ratelimit import account_key, auth_limit, limiter

bp = page_blueprint("signin", None, login=False)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@limiter.limit(auth_limit, methods=["POST"], key_func=account_key)
def login():
    """The sign-in form; a wrong password or a deactivated account is said next to the field."""
    if request.method == "GET" and g.user is not None:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            user = users_service.authenticate_user(form.email.data, form.password.data)
        except Unauthorized as exc:
            form.password.errors.append(exc.message)
            return render("login.html", 401, form=form)
        sign_in(user)
        return redirect(safe_next(form.next.data))
    return render("login.html", 400 if form.errors else 200, form=form)


@bp.post("/logout")
def logout():
    """Sign out: the session is revoked server-side (its socket token stops working too)."""
    sign_out("logout")
    return redirect(url_for("signin.login"))
