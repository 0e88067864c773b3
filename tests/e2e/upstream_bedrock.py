"""A mock Amazon Bedrock Runtime (Converse API) for the Switchyard end-to-end tests.

Standard library only, in the style of ``upstreams.py``: a ``ThreadingHTTPServer`` in a
background thread on an ephemeral port of 127.0.0.1, every request recorded.

* ``POST /model/{modelId}/converse``: a JSON answer.
* ``POST /model/{modelId}/converse-stream``: ``application/vnd.amazon.eventstream``, real binary
  frames (prelude with its CRC32, string headers ``:event-type`` / ``:content-type`` /
  ``:message-type``, the JSON payload with its ``p`` padding, the message CRC32, both as
  ``zlib.crc32`` computes them), sent with ``Transfer-Encoding: chunked`` and each frame cut in
  two HTTP chunks, so the client must reassemble partial frames.

It authenticates as AWS does. A SigV4 request is verified by recomputing its signature from the
known test credentials (canonical request with each path segment encoded once more than on the
wire, so a model id ``…v1:0`` sent as ``…v1%3A0`` is signed as ``…v1%253A0``; the signed headers
the client lists; the SHA-256 of the body; the scope ``date/region/bedrock/aws4_request``); a
mismatch is a 403 ``InvalidSignatureException``, an unknown key a 403
``UnrecognizedClientException``. A Bedrock API key is accepted as ``Authorization: Bearer``.

It validates the body as the Converse API does and answers 400 ``ValidationException`` with
AWS's wording otherwise: no unknown top-level members; messages start with a user message and
alternate; every block has exactly one member; no blank text; images are png/jpeg/gif/webp with
base64 bytes; toolUse only from the assistant; toolResult ids answer the toolUse blocks of the
assistant message right before, all of them; a toolConfig whenever tool blocks appear, with
well-formed toolSpecs and a toolChoice naming a known tool; maxTokens a positive integer,
temperature and topP within 0–1.

Scenarios, by model id: ``MODEL_ID`` and ``PROFILE_ARN`` answer normally; ``THROTTLED_HTTP``
answers HTTP 429 ``ThrottlingException``; ``THROTTLED_FRAME`` streams a ``throttlingException``
frame before anything else; ``THROTTLED_MID_STREAM`` streams two text deltas, then the
exception frame. ``scenario:tool`` in the last user text asks for a tool call (a text block, then
a toolUse block whose input is streamed in fragments); when the last user turn holds tool
results, the answer quotes them. Otherwise the answer is text that honours ``maxTokens``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

REGION = "us-east-1"
SERVICE = "bedrock"
# Long-term test credentials (the gateway reads them from AWS_* variables) and temporary ones
# with a session token (the gateway reads them from its config).
ACCESS_KEY_ID = "AKIDSWITCHYARDE2E"
SECRET_ACCESS_KEY = "e2e/Secret+Key/wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLE"
TEMP_ACCESS_KEY_ID = "ASIASWITCHYARDTEMP"
TEMP_SECRET_ACCESS_KEY = "temp/Secret+Key/AbCdEfGhIjKlMnOpQrStUvWxYz012345"
SESSION_TOKEN = "FwoGZXIvYXdzEE0aDE2E//session+token=="
API_KEY = "ABSKe2e-bedrock-api-key-7c41d9"

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
THROTTLED_HTTP = "meta.llama3-throttled-http-v1:0"
THROTTLED_FRAME = "meta.llama3-throttled-frame-v1:0"
THROTTLED_MID_STREAM = "meta.llama3-throttled-mid-stream-v1:0"
MODELS = {MODEL_ID, PROFILE_ARN, THROTTLED_HTTP, THROTTLED_FRAME, THROTTLED_MID_STREAM}

INPUT_TOKENS = 25
CACHE_READ_TOKENS = 4
TOOL_INPUT = {"location": "Paris", "unit": "celsius"}
MID_STREAM_TEXT = ["partial ", "answer "]
THROTTLE_MESSAGE = "Too many requests, please wait before trying again."

TOP_LEVEL = {
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
}
MESSAGE_BLOCKS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint", "reasoningContent"}
IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}


@dataclass
class Recorded:
    """One request received by the mock."""

    method: str
    path: str  # the request target as it came on the wire (still percent-encoded)
    headers: dict[str, str]
    raw: bytes
    body: Any
    model_id: str = ""  # the path's model segment, decoded
    auth: str = ""  # "sigv4" or "bearer" once accepted
    signed_headers: list[str] = field(default_factory=list)
    status: int = 0
    error: str = ""  # the AWS error type sent back, if any
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


class Reject(Exception):
    """An AWS error answer: status, x-amzn-ErrorType, message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def invalid(message: str) -> Reject:
    return Reject(400, "ValidationException", message)


# ---------------------------------------------------------------------------
# event-stream framing
# ---------------------------------------------------------------------------


def frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message; every header value is a string (type 7)."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, payload: dict) -> bytes:
    # Real streams pad every payload with a `p` member of varying length.
    body = json.dumps({**payload, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[: 4 + len(kind)]}).encode()
    return frame([(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")], body)


def exception_frame(kind: str, message: str) -> bytes:
    headers = [(":exception-type", kind), (":content-type", "application/json"), (":message-type", "exception")]
    return frame(headers, json.dumps({"message": message}).encode())


def read_frames(data: bytes) -> list[tuple[dict[str, str], Any]]:
    """Decodes a whole event-stream body (for the self-checks), verifying both CRCs."""
    out = []
    while data:
        total, headers_len, prelude_crc = struct.unpack(">III", data[:12])
        assert zlib.crc32(data[:8]) == prelude_crc, "prelude CRC mismatch"
        assert zlib.crc32(data[: total - 4]) == struct.unpack(">I", data[total - 4 : total])[0], "message CRC mismatch"
        headers, pos, end = {}, 12, 12 + headers_len
        while pos < end:
            n = data[pos]
            name = data[pos + 1 : pos + 1 + n].decode()
            pos += 1 + n
            assert data[pos] == 7, "only string headers are used"
            (length,) = struct.unpack(">H", data[pos + 1 : pos + 3])
            headers[name] = data[pos + 3 : pos + 3 + length].decode()
            pos += 3 + length
        out.append((headers, json.loads(data[end : total - 4])))
        data = data[total:]
    return out


# ---------------------------------------------------------------------------
# SigV4
# ---------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature(secret: str, amz_date: str, region: str, service: str, canonical_request: str) -> str:
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_request(method: str, target: str, headers: dict[str, str], signed: list[str], body: bytes) -> str:
    """The SigV4 canonical request of a non-S3 service: each path segment as received is
    URI-encoded once more (``%3A`` becomes ``%253A``), the query sorted, the headers trimmed."""
    parts = urlsplit(target)
    uri = "/".join(quote(segment, safe="-_.~") for segment in parts.path.split("/")) or "/"
    pairs = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
        for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    query = "&".join(f"{k}={v}" for k, v in pairs)
    lines = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    return "\n".join([method, uri, query, lines, ";".join(signed), hashlib.sha256(body).hexdigest()])


def sign(method: str, url: str, body: bytes, access_key: str, secret: str, headers: dict[str, str]) -> dict[str, str]:
    """Signs a request (for the mock's self-checks): returns the headers to send."""
    parts = urlsplit(url)
    amz_date = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    all_headers = {k.lower(): v for k, v in headers.items()} | {"host": parts.netloc, "x-amz-date": amz_date}
    signed = sorted(all_headers)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sig = signature(secret, amz_date, REGION, SERVICE, canonical_request(method, target, all_headers, signed, body))
    scope = f"{amz_date[:8]}/{REGION}/{SERVICE}/aws4_request"
    auth = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    return {**all_headers, "authorization": auth}


# key id -> (secret, session token or None)
CREDENTIALS = {ACCESS_KEY_ID: (SECRET_ACCESS_KEY, None), TEMP_ACCESS_KEY_ID: (TEMP_SECRET_ACCESS_KEY, SESSION_TOKEN)}


def verify_sigv4(rec: Recorded) -> None:
    auth = rec.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        raise Reject(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    try:
        fields = dict(item.strip().split("=", 1) for item in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        key_id, date, region, service, terminal = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
    except (KeyError, ValueError) as e:
        raise Reject(400, "IncompleteSignatureException", f"Authorization header requires Credential, SignedHeaders and Signature ({e})") from e
    if key_id not in CREDENTIALS:
        raise Reject(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    secret, token = CREDENTIALS[key_id]
    amz_date = rec.headers.get("x-amz-date", "")
    if region != REGION or service != SERVICE or terminal != "aws4_request" or date != amz_date[:8]:
        raise Reject(403, "InvalidSignatureException", f"Credential should be scoped to a valid region and service: {fields['Credential']}")
    if signed != sorted(signed) or "host" not in signed or "x-amz-date" not in signed:
        raise Reject(403, "InvalidSignatureException", "SignedHeaders must be sorted and include host and x-amz-date")
    unsigned_amz = [h for h in rec.headers if h.startswith("x-amz-") and h not in signed]
    if unsigned_amz:
        raise Reject(403, "InvalidSignatureException", f"x-amz-* headers must be signed: {unsigned_amz}")
    try:
        sent_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError as e:
        raise Reject(403, "InvalidSignatureException", f"bad X-Amz-Date {amz_date!r}") from e
    if abs((datetime.now(timezone.utc) - sent_at).total_seconds()) > 300:
        raise Reject(403, "InvalidSignatureException", "Signature expired: the request time is too far from the server time")
    if token is not None and (rec.headers.get("x-amz-security-token") != token or "x-amz-security-token" not in signed):
        raise Reject(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    creq = canonical_request(rec.method, rec.path, rec.headers, signed, rec.raw)
    if not hmac.compare_digest(signature(secret, amz_date, region, service, creq), given):
        raise Reject(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
    rec.auth, rec.signed_headers = "sigv4", signed


def authenticate(rec: Recorded) -> None:
    auth = rec.headers.get("authorization", "")
    if auth.startswith("Bearer "):
        if auth[len("Bearer ") :] != API_KEY:
            raise Reject(403, "UnrecognizedClientException", "Invalid API Key format: Must start with pre-defined prefix")
        rec.auth = "bearer"
        return
    verify_sigv4(rec)


# ---------------------------------------------------------------------------
# Converse request validation
# ---------------------------------------------------------------------------


def _blank(text: Any) -> bool:
    return not isinstance(text, str) or not text.strip()


def _check_block(block: Any, where: str, role: str) -> str:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in MESSAGE_BLOCKS:
        raise invalid(f"The content block at {where} must have exactly one of {sorted(MESSAGE_BLOCKS)}: {block!r}")
    kind, value = next(iter(block.items()))
    if kind == "text" and _blank(value):
        raise invalid(f"The text field in the ContentBlock object at {where} is blank. Add text to the text field, and try again.")
    if kind == "image":
        if not isinstance(value, dict) or value.get("format") not in IMAGE_FORMATS:
            raise invalid(f"{where}.image.format: must be one of {sorted(IMAGE_FORMATS)}")
        try:
            base64.b64decode(value["source"]["bytes"], validate=True)
        except (KeyError, TypeError, binascii.Error) as e:
            raise invalid(f"{where}.image.source.bytes: not valid base64 image bytes") from e
    if kind == "toolUse":
        if role != "assistant":
            raise invalid(f"{where}: toolUse blocks are only allowed in assistant messages")
        if not (isinstance(value.get("toolUseId"), str) and isinstance(value.get("name"), str) and isinstance(value.get("input"), dict)):
            raise invalid(f"{where}.toolUse: needs toolUseId, name and an object input")
    if kind == "toolResult":
        if role != "user":
            raise invalid(f"{where}: toolResult blocks are only allowed in user messages")
        content = value.get("content")
        if not isinstance(value.get("toolUseId"), str) or not isinstance(content, list) or not content:
            raise invalid(f"{where}.toolResult: needs toolUseId and content")
        for item in content:
            if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in {"text", "json", "image", "document"}:
                raise invalid(f"{where}.toolResult.content: each item needs exactly one of text, json, image, document")
        if value.get("status") not in (None, "success", "error"):
            raise invalid(f"{where}.toolResult.status: must be success or error")
    return kind


def _check_messages(messages: Any) -> bool:
    """Checks roles, blocks and tool pairing; returns whether any tool block was seen."""
    if not isinstance(messages, list) or not messages:
        raise invalid("The messages field is required and must not be empty.")
    if not isinstance(messages[0], dict) or messages[0].get("role") != "user":
        raise invalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
    tools_seen, pending = False, []
    for i, msg in enumerate(messages):
        role, content = msg.get("role"), msg.get("content")
        if set(msg) != {"role", "content"} or role not in ("user", "assistant"):
            raise invalid(f"messages.{i}: a message has exactly a role (user or assistant) and content")
        if i and messages[i - 1].get("role") == role:
            raise invalid(
                "A conversation must alternate between user and assistant roles. "
                "Make sure the conversation alternates between user and assistant roles and try again."
            )
        if not isinstance(content, list) or not content:
            raise invalid(f"messages.{i}.content: must be a non-empty list of content blocks")
        kinds = [_check_block(b, f"messages.{i}.content.{j}", role) for j, b in enumerate(content)]
        results = [b["toolResult"]["toolUseId"] for b in content if "toolResult" in b]
        for tool_use_id in results:
            if tool_use_id not in pending:
                raise invalid(
                    f"messages.{i}.content: the toolResult id {tool_use_id} does not match any toolUse id of the previous turn"
                )
        if pending and set(pending) - set(results):
            raise invalid(f"Expected toolResult blocks at messages.{i}.content for the following Ids: {', '.join(sorted(set(pending) - set(results)))}")
        pending = [b["toolUse"]["toolUseId"] for b in content if "toolUse" in b]
        tools_seen = tools_seen or "toolUse" in kinds or "toolResult" in kinds
    return tools_seen


def _check_tool_config(config: Any, tools_seen: bool) -> None:
    if config is None:
        if tools_seen:
            raise invalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
        return
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list) or not tools or set(config) - {"tools", "toolChoice"}:
        raise invalid("toolConfig: needs a non-empty tools list (and optionally toolChoice)")
    names = []
    for k, tool in enumerate(tools):
        spec = tool.get("toolSpec") if isinstance(tool, dict) and set(tool) == {"toolSpec"} else None
        schema = spec.get("inputSchema") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or _blank(spec.get("name")) or set(spec) - {"name", "description", "inputSchema"}:
            raise invalid(f"toolConfig.tools.{k}: needs toolSpec with a name, an optional description and inputSchema")
        if not isinstance(schema, dict) or set(schema) != {"json"} or not isinstance(schema["json"], dict):
            raise invalid(f"toolConfig.tools.{k}.toolSpec.inputSchema: must be {{json: <JSON schema object>}}")
        names.append(spec["name"])
    choice = config.get("toolChoice")
    if choice is not None:
        if not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool"):
            raise invalid("toolConfig.toolChoice: must be exactly one of auto, any, tool")
        if "tool" in choice and choice["tool"].get("name") not in names:
            raise invalid(f"toolConfig.toolChoice.tool.name: {choice['tool'].get('name')!r} is not one of the tools")


def _check_inference(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict) or set(config) - {"maxTokens", "temperature", "topP", "stopSequences"}:
        raise invalid(f"inferenceConfig: unknown member in {config!r}")
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise invalid("The maximum tokens you requested exceeds the model limit or is not a positive integer.")
    for name in ("temperature", "topP"):
        v = config.get(name)
        if v is not None and (not isinstance(v, (int, float)) or not 0 <= v <= 1):
            raise invalid(f"inferenceConfig.{name}: must be between 0 and 1")
    stops = config.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)):
        raise invalid("inferenceConfig.stopSequences: must be a list of non-empty strings")


def validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise Reject(400, "SerializationException", "The request body is not a JSON object.")
    extra = set(body) - TOP_LEVEL
    if extra:
        raise invalid(f"Malformed input request: extraneous key [{sorted(extra)[0]}] is not permitted, please reformat your input and try again.")
    tools_seen = _check_messages(body.get("messages"))
    _check_tool_config(body.get("toolConfig"), tools_seen)
    _check_inference(body.get("inferenceConfig"))
    system = body.get("system", [])
    if not isinstance(system, list):
        raise invalid("system: must be a list of blocks")
    for k, block in enumerate(system):
        if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in ("text", "guardContent", "cachePoint"):
            raise invalid(f"system.{k}: must have exactly one of text, guardContent, cachePoint")
        if "text" in block and _blank(block["text"]):
            raise invalid(f"The text field in the SystemContentBlock object at system.{k} is blank.")
    if not isinstance(body.get("additionalModelRequestFields", {}), dict):
        raise invalid("additionalModelRequestFields: must be an object")


# ---------------------------------------------------------------------------
# answers
# ---------------------------------------------------------------------------


def _last_user(body: dict) -> dict:
    return next((m for m in reversed(body["messages"]) if m["role"] == "user"), {"content": []})


def plan_answer(body: dict) -> dict:
    """What to answer: text pieces, an optional tool call, the stop reason and the usage."""
    last = _last_user(body)
    user_text = "".join(b.get("text", "") for b in last["content"])
    results = [b["toolResult"] for b in last["content"] if "toolResult" in b]
    tool_call = None
    if results:
        quoted = "; ".join("".join(c.get("text", "") or json.dumps(c.get("json")) for c in r["content"]) for r in results)
        words = f"The tool said: {quoted}".split(" ")
    elif "scenario:tool" in user_text and body.get("toolConfig"):
        name = body["toolConfig"]["tools"][0]["toolSpec"]["name"]
        tool_call = {"toolUseId": "tooluse_" + uuid.uuid4().hex[:22], "name": name, "input": TOOL_INPUT}
        words = ["Let", "me", "check."]
    else:
        # Non-ASCII on purpose: the gateway must not mangle multi-byte UTF-8 split across frames.
        said = " ".join(user_text.split()[:6])
        words = f"Hello from Bedrock naïve café ☕ — you said: {said}".split(" ")
    max_tokens = (body.get("inferenceConfig") or {}).get("maxTokens") or 4096
    stop = "tool_use" if tool_call else "end_turn"
    if len(words) > max_tokens:
        words, stop, tool_call = words[:max_tokens], "max_tokens", None
    pieces = [w + " " for w in words[:-1]] + [words[-1]]
    usage = {
        "inputTokens": INPUT_TOKENS,
        "outputTokens": len(pieces) + (5 if tool_call else 0),
        "cacheReadInputTokens": CACHE_READ_TOKENS,
        "cacheWriteInputTokens": 0,
    }
    usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"] + CACHE_READ_TOKENS
    return {"pieces": pieces, "tool_call": tool_call, "stop": stop, "usage": usage}


def answer_json(plan: dict) -> dict:
    content: list[dict] = [{"text": "".join(plan["pieces"])}]
    if plan["tool_call"]:
        content.append({"toolUse": plan["tool_call"]})
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": plan["stop"],
        "usage": plan["usage"],
        "metrics": {"latencyMs": 42},
    }


def answer_frames(plan: dict) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in plan["pieces"]]
    frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    call = plan["tool_call"]
    if call:
        start = {"toolUse": {"toolUseId": call["toolUseId"], "name": call["name"]}}
        frames.append(event("contentBlockStart", {"contentBlockIndex": 1, "start": start}))
        text = json.dumps(call["input"])
        for i in range(0, len(text), 9):
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": text[i : i + 9]}}}))
        frames.append(event("contentBlockStop", {"contentBlockIndex": 1}))
    frames.append(event("messageStop", {"stopReason": plan["stop"]}))
    frames.append(event("metadata", {"usage": plan["usage"], "metrics": {"latencyMs": 42}}))
    return frames


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-bedrock/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body)
        owner: BedrockUpstream = self.server.owner  # type: ignore[attr-defined]
        owner.record(rec)
        try:
            owner.handle(self, rec)
        except Reject as e:
            rec.status, rec.error = e.status, e.error_type
            self.send_json(e.status, {"message": e.message}, {"x-amzn-ErrorType": f"{e.error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_frames(self, frames: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        for n, data in enumerate(frames):
            # Each frame in two HTTP chunks cut at a varying place: the client must buffer.
            cut = 1 + (n * 7) % (len(data) - 1)
            for piece in (data[:cut], data[cut:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class BedrockUpstream:
    """The mock Bedrock Runtime: a ThreadingHTTPServer in a daemon thread, recording requests."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> BedrockUpstream:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mock-bedrock", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "upstream not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def matching(self, needle: str) -> list[Recorded]:
        """Requests whose raw body contains ``needle``."""
        with self._lock:
            return [r for r in self.requests if needle in r.text]

    def handle(self, h: _Handler, rec: Recorded) -> None:
        parts = urlsplit(rec.path).path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in ("converse", "converse-stream"):
            raise Reject(404, "UnknownOperationException", f"no such operation: {rec.path}")
        # One path segment, percent-decoded once: an unencoded `/` of an ARN would split it.
        rec.model_id = unquote(parts[2])
        authenticate(rec)
        if rec.model_id not in MODELS:
            raise invalid("The provided model identifier is invalid.")
        validate(rec.body)
        stream = parts[3] == "converse-stream"
        if rec.model_id == THROTTLED_HTTP or (rec.model_id == THROTTLED_FRAME and not stream):
            raise Reject(429, "ThrottlingException", THROTTLE_MESSAGE)
        plan = plan_answer(rec.body)
        rec.response = {"text": "".join(plan["pieces"]), "tool_call": plan["tool_call"], "usage": plan["usage"]}
        rec.status = 200
        if not stream:
            h.send_json(200, answer_json(plan))
        elif rec.model_id == THROTTLED_FRAME:
            h.send_frames([exception_frame("throttlingException", THROTTLE_MESSAGE)])
        elif rec.model_id == THROTTLED_MID_STREAM:
            deltas = [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}) for t in MID_STREAM_TEXT]
            h.send_frames([event("messageStart", {"role": "assistant"}), *deltas, exception_frame("throttlingException", THROTTLE_MESSAGE)])
        else:
            h.send_frames(answer_frames(plan))
