"""What every node's web pages share: staff accounts and sign-in (the gate), and small pieces
of server-rendered HTML (escaping, tables, badges, the page frame). No JavaScript but the
small inline scripts a page's policy allows by hash, nothing loaded from elsewhere."""

from relay.web._gate import HTML, SECURITY_HEADERS, Gate, same_origin, security_headers
from relay.web._html import (
    HOME,
    Cell,
    Link,
    ago,
    badge,
    count,
    esc,
    figures,
    frame,
    href,
    link,
    page,
    percent,
    table,
    when,
    when_iso,
)
from relay.web._notes import event_note
from relay.web._users import Session, add_user, list_users, remove_user

__all__ = [
    "HOME",
    "HTML",
    "SECURITY_HEADERS",
    "Cell",
    "Gate",
    "Link",
    "Session",
    "add_user",
    "ago",
    "badge",
    "count",
    "esc",
    "event_note",
    "figures",
    "frame",
    "href",
    "link",
    "list_users",
    "page",
    "percent",
    "remove_user",
    "same_origin",
    "security_headers",
    "table",
    "when",
    "when_iso",
]
