"""The intake app's pages for taking a request: finding the item, its guide, the form. HTML
from data already read; every word from the message catalog."""

from collections.abc import Mapping

from casework import Item, Material
from messages import t
from relay.web import esc, href

Values = Mapping[str, str]


def w(key: str, /, **fields: object) -> str:
    """A message of the app, escaped for HTML."""
    return esc(t(f"village_app.{key}", None, **fields))


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def error_box(message: str) -> str:
    return f'<p class="error" role="alert">{esc(message)}</p>' if message else ""


def find(query: str, found: list[Item]) -> str:
    listed = "".join(
        f'<li><a href="{href("item", item.code)}">{esc(item.name)}</a>'
        f'<span class="hint">{esc(limit(item))} · {esc(fee(item))}</span></li>'
        for item in found
    )
    summary = w("found", n=len(found)) if found else w("found_none")
    return (
        '<form method="get" action="/" role="search">'
        f'<label for="q">{w("find_label")}</label>'
        f'<input id="q" name="q" value="{esc(query) if query else ""}" autofocus autocomplete="off"> '
        f'<button type="submit">{w("find_submit")}</button></form>'
        f'<p role="status">{summary}</p><ol class="items">{listed}</ol>'
    )


def guide(item: Item) -> str:
    target = href("item", item.code, "take")
    start = f'<a class="primary" href="{target}"'
    first = f'{start} id="start" accesskey="s" autofocus>{w("guide_start")}</a>'
    last = f"{start}>{w('guide_start')}</a>"
    elements = [
        ("item", w("named", name=item.name, code=item.code)),
        ("department", esc(item.department)),
        ("decided_at", esc(t(f"level.{item.decide_level}"))),
        ("basis", esc(item.basis) if item.basis else ""),
        ("conditions", _list(item.conditions)),
        ("materials", _list([material_line(m) for m in item.materials], ordered=True)),
        ("procedure", _list(item.procedure, ordered=True)),
        ("time_limit", esc(limit(item))),
        ("not_counted", esc(joined(item.excluded_steps)) if item.excluded_steps else ""),
        ("fee", esc(fee(item))),
        ("consultation", esc(item.consultation) if item.consultation else ""),
        ("complaint", esc(item.complaint_channel) if item.complaint_channel else ""),
    ]
    shown = "".join(f"<dt>{w(key)}</dt><dd>{value}</dd>" for key, value in elements if value)
    back = f'<a href="/">{w("guide_back")}</a>'
    return f'{first}<dl class="guide">{shown}</dl>{last} {back}'


def take_form(item: Item, token: str, values: Values, problem: str) -> str:
    scans = "".join(
        f'<label for="m{index}">{w("scan_of", name=material_line(material))}</label>'
        f'<input type="file" id="m{index}" name="m{index}" accept="image/*,application/pdf">'
        for index, material in enumerate(item.materials)
    )
    chosen = values.get("mandate", "")
    mandates = "".join(
        f'<label class="choice"><input type="radio" name="mandate" value="{form}" required'
        f"{' checked' if chosen == form else ''}> {w(f'mandate_{form}')}</label>"
        for form in ("in_person", "written")
    )
    return (
        f"{error_box(problem)}<p>{w('labelled', label=t('village_app.item'), value=item.name)}</p>"
        f'<form method="post" action="{href("item", item.code, "take")}" enctype="multipart/form-data">'
        f"{csrf_field(token)}<fieldset><legend>{w('applicant')}</legend>"
        f'<label for="name">{w("name")}</label>'
        f'<input id="name" name="name" value="{_value(values, "name")}" required maxlength="64" '
        'autocomplete="off" autofocus>'
        f'<label for="id_number">{w("id_number")}<span class="hint">{w("id_hint")}</span></label>'
        f'<input id="id_number" name="id_number" value="{_value(values, "id_number")}" required '
        'maxlength="18" autocomplete="off" pattern="[0-9]{17}[0-9Xx]" data-idcheck '
        f'data-shape="{w("error.id_shape")}" data-digit="{w("error.id_check")}" data-ok="{w("id_ok")}">'
        '<span id="id_number-note" role="status" aria-live="polite"></span>'
        f'<label for="phone">{w("phone")}</label>'
        f'<input id="phone" name="phone" value="{_value(values, "phone")}" inputmode="numeric" '
        'maxlength="15" autocomplete="off"></fieldset>'
        f"<fieldset><legend>{w('scans')}</legend>{scans}</fieldset>"
        f"<fieldset><legend>{w('mandate')}</legend>{mandates}"
        f'<label for="mandate_scan">{w("mandate_scan")}</label>'
        '<input type="file" id="mandate_scan" name="mandate_scan" accept="image/*,application/pdf">'
        f'</fieldset><button type="submit" class="primary">{w("submit")}</button></form>'
    )


def material_line(material: Material) -> str:
    need = t("village_app.required") if material.required else t("village_app.optional")
    return t("village_app.material_line", name=material.name, form=material.form, need=need)


def joined(names: object) -> str:
    """Names in a row, as the language writes a list (、 in Chinese)."""
    if not isinstance(names, list | tuple):
        return ""
    return t("village_app.separator").join(str(name) for name in names)


def limit(item: Item) -> str:
    if item.committed_days == 0:
        return t("village_app.limit_on_the_spot")
    return t("village_app.limit_text", committed=item.committed_days, statutory=item.statutory_days)


def fee(item: Item) -> str:
    return t("village_app.fee_some", fee=f"{item.fee:g}") if item.fee else t("village_app.fee_none")


def _list(lines: object, ordered: bool = False) -> str:
    entries = list(lines) if isinstance(lines, list | tuple) else []
    if not entries:
        return ""
    tag = "ol" if ordered else "ul"
    return f"<{tag}>" + "".join(f"<li>{esc(line)}</li>" for line in entries) + f"</{tag}>"


def _value(values: Values, key: str) -> str:
    return esc(values.get(key, "")) if values.get(key) else ""
