"""multipart/form-data bodies (a form with file uploads), parsed with the standard library's
``email`` parser: it is what the bodies are (MIME parts), it copes with any bytes in a file,
and it adds no dependency. The body has been read whole and bounded by relay.httpd before it
gets here; this bounds the number of parts and refuses anything that is not a clean form."""

import email.parser
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart

MAX_PARTS = 40


class MultipartError(ValueError):
    """The body is not a well-formed multipart/form-data form."""


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str  # as the browser gave it; for display only, never a path
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Parts:
    fields: dict[str, str]  # the text fields (first value of each)
    files: dict[str, Upload]  # the file fields that carry a file (an empty file input is left out)


def parse(content_type: str, body: bytes) -> Parts:
    """The fields and files of a multipart/form-data body; MultipartError saying why not."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise MultipartError("the form must be sent as multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart() or message.defects:
        raise MultipartError("the form's parts cannot be read")
    parts = list(message.iter_parts())
    if len(parts) > MAX_PARTS:
        raise MultipartError(f"the form has more than {MAX_PARTS} parts")
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in parts:
        _take(part, fields, files)
    return Parts(fields, files)


def _take(part: MIMEPart, fields: dict[str, str], files: dict[str, Upload]) -> None:
    name = part.get_param("name", header="content-disposition")
    if not isinstance(name, str) or not name or part.defects or part.is_multipart():
        raise MultipartError("a part of the form has no name")
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise MultipartError(f"the form's part {name[:40]!r} cannot be read")
    filename = part.get_filename()
    if filename is None:
        try:
            fields.setdefault(name, data.decode("utf-8", errors="strict"))
        except UnicodeDecodeError as exc:
            raise MultipartError(f"the form's field {name[:40]!r} is not UTF-8") from exc
    elif data:  # an empty file input sends no file
        files.setdefault(name, Upload(filename[:200], part.get_content_type(), data))
