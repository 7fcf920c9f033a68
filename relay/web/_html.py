"""Small pieces of server-rendered HTML: escaping, tables, coloured badges, the page frame.
No JavaScript, nothing loaded from elsewhere; the style is inline."""

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from messages import language, t
from relay.clock import CHINA

Cell = str | tuple[str, str]  # HTML, or (HTML, CSS class of the cell)
Link = tuple[str, str]  # (path, catalog key of its label): the header's navigation
HOME: tuple[Link, ...] = (("/", "nav.overview"),)

STYLE = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:0;color:#222}
header{background:#b71c1c;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}
header a,header button{color:#fff;font-size:1em}
header .app{font-weight:bold;font-size:1.15em}
header form{margin-left:auto}
header button{background:none;border:1px solid #fff;border-radius:3px;cursor:pointer}
main{padding:1em 1.5em}
h1{font-size:1.4em;margin:.2em 0 .6em}
h2{font-size:1.15em;margin:1.4em 0 .5em;border-left:4px solid #b71c1c;padding-left:.4em}
table{border-collapse:collapse;font-size:.9em;margin-bottom:.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;white-space:nowrap}
td.details{white-space:normal;min-width:30em;max-width:60em;word-break:break-all;font-size:.9em}
th{background:#f3f3f3}
td.n{text-align:right}
.figures{display:flex;flex-wrap:wrap;gap:1em}
.figure{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.figure b{display:block;font-size:1.5em}
.note{color:#666;font-size:.85em}
.badge{padding:.05em .45em;border-radius:3px}
.s-active_day,.l-green,.l-done_on_time{background:#c8e6c9}
.s-active_week{background:#e6f4c8}
.s-silent,.l-done_late{background:#ffcc80}
.s-never,.l-paused{background:#cfd8dc}
.s-not_enrolled,.l-not_accepted,.l-withdrawn{background:#f5f5f5;color:#777}
.l-yellow{background:#fff176}
.l-red{background:#e53935;color:#fff}
.l-overdue{background:#6a1b9a;color:#fff}
.login{max-width:22em;margin:4em auto;border:1px solid #ddd;border-radius:6px;padding:1.5em}
.login label{display:block;margin:.6em 0 .2em}
.login input{width:100%;box-sizing:border-box;padding:.3em}
.login button{margin-top:1em;padding:.3em 1.2em}
.error{color:#b71c1c}
.done{color:#1b5e20}
.actions{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.action{border:1px solid #ddd;border-radius:6px;padding:.4em 1em .8em;min-width:16em;max-width:30em}
.action h3{font-size:1em;margin:.3em 0 .5em}
.action label{display:block;margin:.25em 0}
.action textarea{display:block;width:100%;box-sizing:border-box;min-height:4em;margin-top:.2em}
.action button{margin-top:.5em;padding:.3em 1.2em}
"""


def esc(value: object) -> str:
    return t("none") if value is None or value == "" else html.escape(str(value))


def href(*parts: str, **query: str) -> str:
    """A path on this server from its parts, each percent-encoded."""
    path = "/" + "/".join(quote(part, safe="") for part in parts)
    if query:
        path += "?" + "&".join(f"{key}={quote(value, safe='')}" for key, value in query.items() if value)
    return html.escape(path)


def link(path: str, label: object) -> str:
    return f'<a href="{path}">{esc(label)}</a>'


def badge(kind: str, key: str) -> str:
    """A coloured label: kind "s" for a node's state, "l" for a case's light."""
    prefix = {"s": "state", "l": "light"}[kind]
    return f'<span class="badge {kind}-{html.escape(key)}">{esc(t(f"{prefix}.{key}"))}</span>'


def count(value: int, warn: str = "") -> Cell:
    """A number cell, coloured as ``warn`` (a light) when it is above zero."""
    return (str(value), f"n l-{warn}" if warn and value else "n")


def percent(rate: float | None) -> str:
    return t("none") if rate is None else f"{rate * 100:.1f}%"


def when(us: int | None) -> str:
    """A time in China Standard Time, to the minute."""
    if us is None:
        return t("none")
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def when_iso(text: str | None) -> str:
    """An ISO 8601 time (as the case JSON gives it) in China Standard Time, to the second."""
    if not text:
        return t("none")
    return datetime.fromisoformat(text).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def ago(us: int | None, now: int) -> str:
    """How long ago, roughly, with the exact time on hover."""
    if us is None:
        return t("none")
    seconds = max(0, (now - us) // 1_000_000)
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f'<span title="{when(us)}">{t(f"ago.{unit}", n=seconds // size)}</span>'
    return f'<span title="{when(us)}">{t("ago.seconds", n=seconds)}</span>'


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], css: str = "") -> str:
    head = "".join(f"<th>{esc(t(key))}</th>" for key in headers)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(cell: Cell) -> str:
    if isinstance(cell, tuple):
        content, css = cell
        return f'<td class="{html.escape(css)}">{content}</td>'
    return f"<td>{cell}</td>"


def figures(pairs: Sequence[tuple[str, str]]) -> str:
    """Headline figures: (label key, HTML value)."""
    boxes = "".join(f'<div class="figure">{esc(t(key))}<b>{value}</b></div>' for key, value in pairs)
    return f'<div class="figures">{boxes}</div>'


def page(title: str, body: str, user: str | None, app: str, links: Sequence[Link] = HOME) -> bytes:
    """A whole page of the application ``app``: the header with navigation (``links``) and
    logout (when logged in), then the body."""
    nav = ""
    if user is not None:
        nav = (
            "".join(f'<a href="{html.escape(path)}">{esc(t(key))}</a>' for path, key in links)
            + f'<form method="post" action="/logout"><span>{esc(t("nav.user"))}：{esc(user)}</span> '
            f'<button type="submit">{esc(t("nav.logout"))}</button></form>'
        )
    return frame(title, body, app, nav)


def frame(title: str, body: str, app: str, nav: str = "", style: str = "", script: str = "") -> bytes:
    """The page around ``body``: the header with the application's name and ``nav`` (HTML),
    the shared STYLE plus ``style``, and ``script`` inline at the end (its hash must be allowed
    by the page's Content-Security-Policy: see security_headers)."""
    tail = f"<script>{script}</script>" if script else ""
    return (
        f'<!DOCTYPE html><html lang="{language()}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(app)}</title><style>{STYLE}{style}</style></head>"
        f'<body><header><span class="app">{esc(app)}</span>{nav}</header>'
        f"<main><h1>{esc(title)}</h1>{body}</main>{tail}</body></html>"
    ).encode()
