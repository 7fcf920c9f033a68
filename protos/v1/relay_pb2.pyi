import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "case_id", "origin_node", "origin_seq", "type", "payload", "recorded_at", "catalog_version", "village_code", "township_code")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NODE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    VILLAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_CODE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    case_id: str
    origin_node: str
    origin_seq: int
    type: str
    payload: bytes
    recorded_at: _timestamp_pb2.Timestamp
    catalog_version: str
    village_code: str
    township_code: str
    def __init__(self, event_id: _Optional[str] = ..., case_id: _Optional[str] = ..., origin_node: _Optional[str] = ..., origin_seq: _Optional[int] = ..., type: _Optional[str] = ..., payload: _Optional[bytes] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., catalog_version: _Optional[str] = ..., village_code: _Optional[str] = ..., township_code: _Optional[str] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("seq", "event")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    event: Event
    def __init__(self, seq: _Optional[int] = ..., event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("sender", "envelopes", "stream", "audit")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    sender: str
    envelopes: _containers.RepeatedCompositeFieldContainer[Envelope]
    stream: int
    audit: AuditLinks
    def __init__(self, sender: _Optional[str] = ..., envelopes: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., stream: _Optional[int] = ..., audit: _Optional[_Union[AuditLinks, _Mapping]] = ...) -> None: ...

class AuditLink(_message.Message):
    __slots__ = ("event_id", "event_hash", "staff")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_HASH_FIELD_NUMBER: _ClassVar[int]
    STAFF_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_hash: bytes
    staff: str
    def __init__(self, event_id: _Optional[str] = ..., event_hash: _Optional[bytes] = ..., staff: _Optional[str] = ...) -> None: ...

class AuditLinks(_message.Message):
    __slots__ = ("first_seq", "prev_hash", "links", "head_hash")
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    first_seq: int
    prev_hash: bytes
    links: _containers.RepeatedCompositeFieldContainer[AuditLink]
    head_hash: bytes
    def __init__(self, first_seq: _Optional[int] = ..., prev_hash: _Optional[bytes] = ..., links: _Optional[_Iterable[_Union[AuditLink, _Mapping]]] = ..., head_hash: _Optional[bytes] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("seq", "event_id", "reason")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    event_id: str
    reason: str
    def __init__(self, seq: _Optional[int] = ..., event_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PushAck(_message.Message):
    __slots__ = ("applied_upto", "rejections", "duplicates", "audit_upto")
    APPLIED_UPTO_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    AUDIT_UPTO_FIELD_NUMBER: _ClassVar[int]
    applied_upto: int
    rejections: _containers.RepeatedCompositeFieldContainer[Rejection]
    duplicates: int
    audit_upto: int
    def __init__(self, applied_upto: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ..., duplicates: _Optional[int] = ..., audit_upto: _Optional[int] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("node", "after", "limit", "wait_ms", "after_event_id")
    NODE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    node: str
    after: int
    limit: int
    wait_ms: int
    after_event_id: str
    def __init__(self, node: _Optional[str] = ..., after: _Optional[int] = ..., limit: _Optional[int] = ..., wait_ms: _Optional[int] = ..., after_event_id: _Optional[str] = ...) -> None: ...

class FeedEvent(_message.Message):
    __slots__ = ("position", "event")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    position: int
    event: Event
    def __init__(self, position: _Optional[int] = ..., event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class PullReply(_message.Message):
    __slots__ = ("events", "head", "reset")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[FeedEvent]
    head: int
    reset: bool
    def __init__(self, events: _Optional[_Iterable[_Union[FeedEvent, _Mapping]]] = ..., head: _Optional[int] = ..., reset: _Optional[bool] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("node", "role", "software_version", "catalog_version", "backlog", "last_push", "last_pull", "sent_at", "last_seen", "below", "audit_breaks")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    LAST_PUSH_FIELD_NUMBER: _ClassVar[int]
    LAST_PULL_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    BELOW_FIELD_NUMBER: _ClassVar[int]
    AUDIT_BREAKS_FIELD_NUMBER: _ClassVar[int]
    node: str
    role: str
    software_version: str
    catalog_version: str
    backlog: int
    last_push: _timestamp_pb2.Timestamp
    last_pull: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    below: _containers.RepeatedCompositeFieldContainer[HeartbeatRequest]
    audit_breaks: _containers.RepeatedCompositeFieldContainer[AuditBreak]
    def __init__(self, node: _Optional[str] = ..., role: _Optional[str] = ..., software_version: _Optional[str] = ..., catalog_version: _Optional[str] = ..., backlog: _Optional[int] = ..., last_push: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_pull: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., below: _Optional[_Iterable[_Union[HeartbeatRequest, _Mapping]]] = ..., audit_breaks: _Optional[_Iterable[_Union[AuditBreak, _Mapping]]] = ...) -> None: ...

class AuditBreak(_message.Message):
    __slots__ = ("seq", "reason", "recorded_at")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    reason: str
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, seq: _Optional[int] = ..., reason: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("server_time",)
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    server_time: _timestamp_pb2.Timestamp
    def __init__(self, server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CatalogRequest(_message.Message):
    __slots__ = ("node", "have_version")
    NODE_FIELD_NUMBER: _ClassVar[int]
    HAVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    node: str
    have_version: str
    def __init__(self, node: _Optional[str] = ..., have_version: _Optional[str] = ...) -> None: ...

class CatalogReply(_message.Message):
    __slots__ = ("version", "document", "published_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    version: str
    document: bytes
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[str] = ..., document: _Optional[bytes] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CalendarRequest(_message.Message):
    __slots__ = ("node", "have_version")
    NODE_FIELD_NUMBER: _ClassVar[int]
    HAVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    node: str
    have_version: str
    def __init__(self, node: _Optional[str] = ..., have_version: _Optional[str] = ...) -> None: ...

class CalendarReply(_message.Message):
    __slots__ = ("version", "document", "published_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    version: str
    document: bytes
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[str] = ..., document: _Optional[bytes] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RevocationsRequest(_message.Message):
    __slots__ = ("node", "after")
    NODE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    node: str
    after: int
    def __init__(self, node: _Optional[str] = ..., after: _Optional[int] = ...) -> None: ...

class Revocation(_message.Message):
    __slots__ = ("code", "revoked_at", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: str
    revoked_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, code: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RevocationsReply(_message.Message):
    __slots__ = ("revocations",)
    REVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    revocations: _containers.RepeatedCompositeFieldContainer[Revocation]
    def __init__(self, revocations: _Optional[_Iterable[_Union[Revocation, _Mapping]]] = ...) -> None: ...

class CertifyRequest(_message.Message):
    __slots__ = ("node", "subject", "csr", "subject_certificate", "token_made_at")
    NODE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_MADE_AT_FIELD_NUMBER: _ClassVar[int]
    node: str
    subject: str
    csr: bytes
    subject_certificate: bytes
    token_made_at: _timestamp_pb2.Timestamp
    def __init__(self, node: _Optional[str] = ..., subject: _Optional[str] = ..., csr: _Optional[bytes] = ..., subject_certificate: _Optional[bytes] = ..., token_made_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CertifyReply(_message.Message):
    __slots__ = ("certificate", "ca_certificate", "name", "upstream_name")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    ca_certificate: bytes
    name: str
    upstream_name: str
    def __init__(self, certificate: _Optional[bytes] = ..., ca_certificate: _Optional[bytes] = ..., name: _Optional[str] = ..., upstream_name: _Optional[str] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("token_id", "csr", "proof")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    csr: bytes
    proof: bytes
    def __init__(self, token_id: _Optional[str] = ..., csr: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...

class EnrollReply(_message.Message):
    __slots__ = ("bundle", "proof")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    proof: bytes
    def __init__(self, bundle: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...
