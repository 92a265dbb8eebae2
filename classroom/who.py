"""Who is asking: this browser, known by a random token it keeps in a cookie (hashed
before anyone sees it), and whether it gave the teacher's passphrase.

The training queue and the model pages ask ``requester()`` before acting on a run or a
model. Nothing here imports ``ui``, so ``ui`` may import this module.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets

import streamlit as st

from mnist_core.registry import ModelEntry
from mnist_core.training_queue import Requester

BROWSER_COOKIE = "mnist_live_browser"
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
PASSPHRASE_VARIABLE = "MNIST_TEACHER_PASSPHRASE"


def _browser_token() -> str:
    """A random token this browser keeps in a cookie: it stays the same when the browser
    reconnects after sleep or the server restarts, so the browser still owns its runs."""
    token = st.context.cookies.get(BROWSER_COOKIE)
    if isinstance(token, str) and TOKEN.fullmatch(token):  # AppTest has no cookies
        return token
    return st.session_state.setdefault("browser_token", secrets.token_urlsafe(24))


def remember_this_browser() -> None:
    """Store the browser's token in its cookie (once a session, when it lacks it).

    Streamlit reads cookies only when a browser connects, and has no call to set one:
    a line of JavaScript does it, and the next connection reads it back.
    """
    token = _browser_token()
    if st.context.cookies.get(BROWSER_COOKIE) == token or st.session_state.get("cookie_set"):
        return
    st.session_state["cookie_set"] = True
    cookie = f"{BROWSER_COOKIE}={token}; path=/; max-age={365 * 24 * 3600}; SameSite=Strict"
    st.sidebar.html(f"<script>document.cookie = '{cookie}';</script>", unsafe_allow_javascript=True)


@st.cache_resource
def _teachers() -> set[str]:
    """The browsers (owners) that gave the teacher's passphrase, until they lock again: a
    reload or a reconnect keeps the teacher's controls; a server restart asks again."""
    return set()


def owner() -> str:
    """A hash of the browser's token, so metadata shown to others never reveals it."""
    return hashlib.sha256(_browser_token().encode()).hexdigest()[:16]


def requester() -> Requester:
    """This browser, as the training queue and the model pages know it."""
    hashed = owner()
    return Requester(hashed, teacher=hashed in _teachers())


def unlock_teacher() -> None:
    """Give this browser the teacher's rights (it gave the passphrase), until it locks."""
    _teachers().add(owner())


def lock_teacher() -> None:
    """Take the teacher's rights back from this browser."""
    _teachers().discard(owner())


def teacher_passphrase() -> str | None:
    """``MNIST_TEACHER_PASSPHRASE``, else ``teacher_passphrase`` in Streamlit's secrets;
    no default: without one, nobody has the teacher's rights."""
    if passphrase := os.environ.get(PASSPHRASE_VARIABLE):
        return passphrase
    if st.secrets.load_if_toml_exists():
        return st.secrets.get("teacher_passphrase") or None
    return None


def may_change(entry: ModelEntry) -> bool:
    """Whether this browser may rename or delete ``entry``: it trained it, or the
    teacher's passphrase was given."""
    return requester().may_act_on(entry.meta.get("owner"))
