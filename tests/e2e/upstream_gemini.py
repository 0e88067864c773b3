"""A mock of Google's Gemini API and of Vertex AI's Gemini endpoints, for the end-to-end tests.

Standard library only, built on ``upstreams.MockUpstream`` (a ThreadingHTTPServer in a daemon
thread that records every request).  It serves:

* Gemini API: ``POST /v1beta/models/{model}:generateContent``,
  ``:streamGenerateContent?alt=sse``, ``:embedContent``, ``:batchEmbedContents``, with the key in
  ``x-goog-api-key`` (a wrong key is the real 400 ``API_KEY_INVALID``, none a 403).
* Vertex AI: the same methods under
  ``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…``, with
  ``Authorization: Bearer`` -- a static token given at construction, or one this mock issued.
* ``POST /token``: the OAuth 2.0 JWT-bearer grant of a service account.  The assertion's RS256
  signature is verified against the account's public key, and its claims (iss, aud, scope,
  exp) are checked; the answer is a fresh access token valid for an hour.

Requests are checked the way the real API checks them, so a translation bug is a 400 here too:
no unknown fields, ``contents`` non-empty, roles ``user``/``model`` only, every part holding
exactly one kind of data, no empty text, function calls only in model turns and function
responses only in user turns, each user turn of function responses answering (by name, one for
one) the function calls of the model turn just before it, ``generationConfig`` fields typed,
function-declaration schemas free of what the OpenAPI subset lacks (``$ref``,
``additionalProperties``, ``$schema``…) and no object schema with empty ``properties``.

Thought signatures: every function call this mock makes carries a ``thoughtSignature`` (the
first call of a parallel set only, as Gemini 3 does).  A later request whose model turn holds
one of those calls without the very same signature is rejected with the real 400
("Function call is missing a thought_signature…").

Scenarios, chosen by the upstream model name or by ``scenario:NAME`` in the last user text:
``tool``, ``parallel-tools`` (function calls; after the function responses, a text answer that
quotes them), ``blocked`` (``promptFeedback.blockReason`` and no candidates), ``rate-limited``
(429 ``RESOURCE_EXHAUSTED`` with ``RetryInfo``), ``malformed`` (finishReason
``MALFORMED_FUNCTION_CALL``); anything else is a text answer that honours ``maxOutputTokens``.
Every answer reports usage with ``GEMINI_THOUGHTS`` thought tokens and ``GEMINI_CACHED`` cached
tokens out of ``GEMINI_PROMPT_TOKENS``; with ``thinkingConfig.includeThoughts`` it also sends a
thought part (``THOUGHT_TEXT``).  Streams are ``\\r\\n``-framed SSE, one HTTP chunk per frame,
each frame a whole ``GenerateContentResponse``, with no end marker.

``make_service_account()`` generates a throwaway RSA key with the standard library (no
cryptography package) and returns the key file's JSON and the public numbers to verify with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from upstreams import EMBEDDING_DIM, TOOL_INPUT, TOOL_INPUTS_PARALLEL, MockUpstream, Recorded, embedding_for, words_of

GEMINI_PROMPT_TOKENS = 31
GEMINI_CACHED = 7
GEMINI_THOUGHTS = 12
THOUGHT_TEXT = "Thinking about the weather first."
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SCENARIOS = ("tool", "parallel-tools", "blocked", "rate-limited", "malformed")

_PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
_PART_KEYS = {*_PART_DATA, "thought", "thoughtSignature"}
_TOP_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
_GEN_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "topP": (int, float),
    "topK": (int,),
    "maxOutputTokens": (int,),
    "stopSequences": (list,),
    "candidateCount": (int,),
    "responseMimeType": (str,),
    "responseSchema": (dict,),
    "seed": (int,),
    "presencePenalty": (int, float),
    "frequencyPenalty": (int, float),
    "thinkingConfig": (dict,),
}
_SCHEMA_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
    "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
    "default", "items", "minimum", "maximum",
}  # fmt: skip


def gemini_error(code: int, status: str, message: str, details: list | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


# ---------------------------------------------------------------------------
# request validation
# ---------------------------------------------------------------------------


def _check_part(part: Any, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"{where}: a part must be an object"
    unknown = set(part) - _PART_KEYS
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" at \'{where}\': Cannot find field.'
    data = [k for k in _PART_DATA if k in part]
    if len(data) != 1:
        return f"{where}: a part must hold exactly one of {', '.join(_PART_DATA)}; it holds {data}"
    kind = data[0]
    if kind == "text" and (not isinstance(part["text"], str) or not part["text"]):
        return f"{where}: Unable to submit request because it has an empty text parameter."
    if kind == "inlineData":
        blob = part["inlineData"]
        if not (isinstance(blob, dict) and isinstance(blob.get("mimeType"), str) and isinstance(blob.get("data"), str)):
            return f"{where}.inline_data: mimeType and data are required"
        try:
            base64.b64decode(blob["data"], validate=True)
        except ValueError:
            return f"{where}.inline_data.data: Invalid value (not base64)"
    if kind == "fileData" and not isinstance(part["fileData"].get("fileUri"), str):
        return f"{where}.file_data.file_uri is required"
    if kind == "functionCall":
        call = part["functionCall"]
        if not isinstance(call.get("name"), str) or not isinstance(call.get("args", {}), dict):
            return f"{where}.function_call: name (string) and args (object) are required"
    if kind == "functionResponse":
        resp = part["functionResponse"]
        if not isinstance(resp.get("name"), str) or not isinstance(resp.get("response"), dict):
            return f"{where}.function_response: name (string) and response (object) are required"
    if "thoughtSignature" in part:
        try:
            base64.b64decode(part["thoughtSignature"], validate=True)
        except ValueError:
            return f"{where}.thought_signature: Invalid value (not base64)"
    return None


def _check_turns(contents: list) -> str | None:
    previous_calls: list[str] = []
    previous_role = None
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict) or set(content) - {"role", "parts"}:
            return f"{where}: a content is {{role, parts}}"
        role = content.get("role")
        if role not in ("user", "model"):
            return f"{where}.role: Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"{where}.parts: must not be empty"
        for j, part in enumerate(parts):
            problem = _check_part(part, f"{where}.parts[{j}]")
            if problem:
                return problem
        calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
        answers = [p["functionResponse"]["name"] for p in parts if "functionResponse" in p]
        if calls and role != "model":
            return f"{where}: function calls are only allowed in model turns"
        if answers and role != "user":
            return f"{where}: function responses are only allowed in user turns"
        if answers and (previous_role != "model" or sorted(answers) != sorted(previous_calls)):
            return (
                f"{where}: Please ensure that function response turn comes immediately after a function call turn, "
                f"and that the number of function response parts is equal to the number of function call parts "
                f"(calls {previous_calls}, responses {answers})."
            )
        previous_calls, previous_role = calls, role
    return None


def _check_schema(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return f"{where}: a schema must be an object"
    for key in schema:
        if key not in _SCHEMA_KEYS:
            return f'Invalid JSON payload received. Unknown name "{key}" at \'{where}\': Cannot find field.'
    if str(schema.get("type", "")).lower() == "object" and "properties" in schema and not schema["properties"]:
        return f"{where}.properties: should be non-empty for OBJECT type"
    for name, sub in (schema.get("properties") or {}).items():
        problem = _check_schema(sub, f"{where}.properties[{name}]")
        if problem:
            return problem
    for key in ("items",):
        if key in schema:
            problem = _check_schema(schema[key], f"{where}.{key}")
            if problem:
                return problem
    for k, sub in enumerate(schema.get("anyOf") or []):
        problem = _check_schema(sub, f"{where}.anyOf[{k}]")
        if problem:
            return problem
    return None


def _check_tools(body: dict) -> str | None:
    for i, tool in enumerate(body.get("tools") or []):
        for j, decl in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{i}].function_declarations[{j}]"
            if set(decl) - {"name", "description", "parameters"} or not isinstance(decl.get("name"), str):
                return f"{where}: a declaration is {{name, description, parameters}}"
            if "parameters" in decl:
                if str(decl["parameters"].get("type", "")).lower() != "object":
                    return f"{where}.parameters: schema should be of type OBJECT"
                problem = _check_schema(decl["parameters"], f"{where}.parameters")
                if problem:
                    return problem
    config = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if config is not None:
        if config.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            return f"tool_config.function_calling_config.mode: invalid value {config.get('mode')!r}"
        if "allowedFunctionNames" in config and config["mode"] != "ANY":
            return "allowed_function_names may be set only when the mode is ANY"
    return None


def _check_generation_config(config: Any) -> str | None:
    if not isinstance(config, dict):
        return "generation_config must be an object"
    for key, value in config.items():
        types = _GEN_TYPES.get(key)
        if types is None:
            return f'Invalid JSON payload received. Unknown name "{key}" at \'generation_config\': Cannot find field.'
        if isinstance(value, bool) or not isinstance(value, types):
            return f"Invalid value at 'generation_config.{key}' ({type(value).__name__})"
    stops = config.get("stopSequences", [])
    if len(stops) > 5 or not all(isinstance(s, str) for s in stops):
        return "generation_config.stop_sequences: at most 5 strings"
    if config.get("responseMimeType") not in (None, "text/plain", "application/json", "text/x.enum"):
        return f"generation_config.response_mime_type: unsupported {config['responseMimeType']!r}"
    if "responseSchema" in config:
        return _check_schema(config["responseSchema"], "generation_config.response_schema")
    return None


def validate_gemini(body: Any) -> str | None:
    """The 400 message the real API would give for this generateContent body, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    unknown = set(body) - _TOP_KEYS
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    system = body.get("systemInstruction")
    if system is not None:
        if not isinstance(system, dict) or not system.get("parts"):
            return "system_instruction: parts are required"
        for j, part in enumerate(system["parts"]):
            if set(part) != {"text"} or not part["text"]:
                return f"system_instruction.parts[{j}]: only non-empty text parts"
    return _check_turns(contents) or _check_tools(body) or _check_generation_config(body.get("generationConfig", {}))


# ---------------------------------------------------------------------------
# service accounts (RS256 with the standard library)
# ---------------------------------------------------------------------------

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def _is_probable_prime(n: int, rounds: int = 16) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(random.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if _is_probable_prime(candidate):
            return candidate


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def make_service_account(token_uri: str, email: str = "switchyard-e2e@acme.iam.gserviceaccount.com") -> tuple[dict, tuple[int, int]]:
    """A throwaway 2048-bit RSA service-account key file, and its public (n, e)."""
    e = 65537
    while True:
        p, q = _prime(1024), _prime(1024)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            break
    n, d = p * q, pow(e, -1, phi)
    rsa_key = _der(0x30, b"".join(_der_int(v) for v in (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))))
    algorithm = _der(0x30, bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
    pkcs8 = _der(0x30, _der_int(0) + algorithm + _der(0x04, rsa_key))
    b64 = base64.b64encode(pkcs8).decode()
    pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + "\n-----END PRIVATE KEY-----\n"
    key_file = {
        "type": "service_account",
        "project_id": "acme",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    return key_file, (n, e)


def _b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(jwt: str, public: tuple[int, int]) -> dict:
    """The claims of a JWT whose RS256 signature verifies with ``public``; raises ValueError otherwise."""
    n, e = public
    head, claims, sig = jwt.split(".")
    if json.loads(_b64url(head)).get("alg") != "RS256":
        raise ValueError("alg is not RS256")
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(_b64url(sig), "big"), e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(f"{head}.{claims}".encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    if em != expected:
        raise ValueError("Invalid JWT Signature.")
    return json.loads(_b64url(claims))


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------

_PATH = re.compile(r"^/(?P<version>v1beta|v1)/(?P<resource>(?:projects/[^/]+/locations/[^/]+/publishers/google/)?models/(?P<model>[^/:]+)):(?P<method>\w+)$")


class GeminiUpstream(MockUpstream):
    name = "gemini"

    def __init__(
        self,
        api_keys: set[str] | list[str] | tuple[str, ...],
        bearer_tokens: tuple[str, ...] = (),
        service_account: tuple[dict, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(api_keys)
        self.bearer_tokens = set(bearer_tokens)
        self.service_account = service_account
        self.issued_tokens: list[str] = []
        # (name, canonical args) -> the signature this mock attached to that call
        self.signatures: dict[tuple[str, str], str] = {}
        self._sig_lock = threading.Lock()

    # -- routing ------------------------------------------------------------
    def handle(self, h: Any, rec: Recorded) -> None:
        path, _, query = rec.path.partition("?")
        if rec.method == "POST" and path == "/token":
            self._token(h, rec)
            return
        m = _PATH.match(path)
        if rec.method != "POST" or m is None:
            self._fail(h, rec, 404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")
            return
        vertex = m.group("version") == "v1"
        if not self._authorized(h, rec, vertex):
            return
        if not isinstance(rec.body, dict):
            self._fail(h, rec, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            return
        method, model, resource = m.group("method"), m.group("model"), m.group("resource")
        if method in ("generateContent", "streamGenerateContent"):
            stream = method == "streamGenerateContent"
            if stream and query != "alt=sse":
                self._fail(h, rec, 400, "INVALID_ARGUMENT", "this mock streams only with ?alt=sse")
                return
            self._generate(h, rec, model, stream)
        elif method == "embedContent":
            self._embed(h, rec, [rec.body], None)
        elif method == "batchEmbedContents":
            self._embed(h, rec, rec.body.get("requests"), resource)
        else:
            self._fail(h, rec, 404, "NOT_FOUND", f"Unknown method {method}")

    def _fail(self, h: Any, rec: Recorded, code: int, status: str, message: str, **extra: Any) -> None:
        rec.response.update(status=code, error=message)
        h.send_json(code, gemini_error(code, status, message, extra.get("details")), headers=extra.get("headers"))

    def _authorized(self, h: Any, rec: Recorded, vertex: bool) -> bool:
        if not vertex:
            key = rec.headers.get("x-goog-api-key")
            if key is None:
                self._fail(h, rec, 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity).")
                return False
            if key not in self.api_keys:
                details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
                self._fail(h, rec, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details=details)
                return False
            return True
        auth = rec.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        with self._lock:
            known = token in self.bearer_tokens or token in self.issued_tokens
        if not auth.startswith("Bearer ") or not known:
            self._fail(h, rec, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
            return False
        return True

    # -- token endpoint -----------------------------------------------------
    def _token(self, h: Any, rec: Recorded) -> None:
        def refuse(description: str) -> None:
            rec.response.update(status=400, error=description)
            h.send_json(400, {"error": "invalid_grant", "error_description": description})

        form = parse_qs(rec.raw.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or len(form.get("assertion", [])) != 1:
            refuse("grant_type must be the JWT bearer grant, with one assertion")
            return
        if self.service_account is None:
            refuse("no service account is known here")
            return
        key_file, public = self.service_account
        try:
            claims = verify_rs256(form["assertion"][0], public)
        except ValueError as e:
            refuse(str(e))
            return
        now = time.time()
        if claims.get("iss") != key_file["client_email"] or claims.get("aud") != key_file["token_uri"]:
            refuse("Invalid JWT: iss or aud does not match the service account")
        elif SCOPE not in str(claims.get("scope", "")).split():
            refuse("Invalid JWT: the scope must include cloud-platform")
        elif not (claims.get("iat", 0) <= now + 60 < claims.get("exp", 0) + 60):
            refuse("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        else:
            token = "ya29.mock-" + secrets.token_urlsafe(24)
            with self._lock:
                self.issued_tokens.append(token)
            rec.response.update(status=200, token=token)
            h.send_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- generateContent ----------------------------------------------------
    def _signature_problem(self, contents: list) -> str | None:
        for i, content in enumerate(contents):
            for part in content["parts"]:
                call = part.get("functionCall")
                if content["role"] != "model" or call is None:
                    continue
                key = (call["name"], json.dumps(call.get("args", {}), sort_keys=True))
                with self._sig_lock:
                    issued = self.signatures.get(key)
                if issued is not None and part.get("thoughtSignature") != issued:
                    return (
                        "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                        "to work correctly, and missing thought_signature may lead to degraded model performance. "
                        f"Additional data, function call `default_api:{call['name']}` , position {i + 1}."
                    )
        return None

    def _generate(self, h: Any, rec: Recorded, model: str, stream: bool) -> None:
        body = rec.body
        problem = validate_gemini(body) or self._signature_problem(body["contents"])
        if problem:
            self._fail(h, rec, 400, "INVALID_ARGUMENT", problem)
            return
        scenario = self._scenario(model, body["contents"])
        rec.scenario = scenario
        if scenario == "rate-limited":
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
            self._fail(h, rec, 429, "RESOURCE_EXHAUSTED",
                       "You exceeded your current quota, please check your plan and billing details. Please retry in 7s.",
                       details=details)  # fmt: skip
            return
        frames = self._answer(body, model, scenario)
        rec.response.update(status=200, frames=frames)
        if not stream:
            h.send_json(200, _merge(frames))
            return
        h.start_sse()
        for frame in frames:
            h.send_chunk(f"data: {json.dumps(frame)}\r\n\r\n".encode())
        h.end_chunks()

    @staticmethod
    def _scenario(model: str, contents: list) -> str:
        if model in SCENARIOS:
            return model
        for content in reversed(contents):
            texts = [p["text"] for p in content["parts"] if "text" in p]
            if content["role"] == "user" and texts:
                m = re.search(r"scenario:([a-z-]+)", " ".join(texts))
                return m.group(1) if m and m.group(1) in SCENARIOS else "default"
        return "default"

    def _answer(self, body: dict, model: str, scenario: str) -> list[dict]:
        """The frames of the answer; a whole response is their merge."""
        meta = {"modelVersion": f"{model}-001", "responseId": uuid.uuid4().hex[:22]}
        if scenario == "blocked":
            usage = {"promptTokenCount": GEMINI_PROMPT_TOKENS, "totalTokenCount": GEMINI_PROMPT_TOKENS}
            return [{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage, **meta}]
        config = body.get("generationConfig", {})
        thoughts = [{"text": THOUGHT_TEXT, "thought": True}] if config.get("thinkingConfig", {}).get("includeThoughts") else []
        last = body["contents"][-1]
        answered = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
        finish = "STOP"
        if scenario == "malformed":
            pieces, finish = [], "MALFORMED_FUNCTION_CALL"
        elif scenario in ("tool", "parallel-tools") and not answered:
            pieces = [self._call(body, args, first=k == 0) for k, args in
                      enumerate(TOOL_INPUTS_PARALLEL if scenario == "parallel-tools" else [TOOL_INPUT])]  # fmt: skip
        elif answered:
            pieces = [{"text": w} for w in words_of("The tool said: " + " | ".join(json.dumps(a["response"], sort_keys=True) for a in answered))]
        else:
            said = " ".join(p.get("text", "") for p in last["parts"]).split()[:6]
            pieces = [{"text": w} for w in words_of("Hello from Gemini: you said: " + " ".join(said))]
            limit = config.get("maxOutputTokens")
            if limit is not None and limit < len(pieces):
                pieces, finish = pieces[:limit], "MAX_TOKENS"
        frames = []
        parts = thoughts + pieces
        for k, part in enumerate(parts or [None]):
            frame: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [part] if part else []}, "index": 0}], **meta}
            done = k == max(len(parts), 1) - 1
            frame["usageMetadata"] = _usage(len(pieces) if done else k + 1, done)
            if done:
                frame["candidates"][0]["finishReason"] = finish
            frames.append(frame)
        return frames

    def _call(self, body: dict, args: dict, first: bool) -> dict:
        tools = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        allowed = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("allowedFunctionNames")
        name = allowed[0] if allowed else (tools[0]["name"] if tools else "get_weather")
        part: dict[str, Any] = {"functionCall": {"name": name, "args": dict(args)}}
        if first:
            signature = base64.b64encode(secrets.token_bytes(48)).decode()
            part["thoughtSignature"] = signature
            with self._sig_lock:
                self.signatures[(name, json.dumps(args, sort_keys=True))] = signature
        return part

    # -- embeddings ---------------------------------------------------------
    def _embed(self, h: Any, rec: Recorded, requests: Any, batch_model: str | None) -> None:
        if not isinstance(requests, list) or not requests:
            self._fail(h, rec, 400, "INVALID_ARGUMENT", "requests must be a non-empty list")
            return
        vectors = []
        for i, req in enumerate(requests):
            where = f"requests[{i}]" if batch_model else "request"
            allowed = {"content", "outputDimensionality", "taskType", "title"} | ({"model"} if batch_model else set())
            if not isinstance(req, dict) or set(req) - allowed:
                self._fail(h, rec, 400, "INVALID_ARGUMENT", f"{where}: unknown field {sorted(set(req) - allowed)}")
                return
            if batch_model and req.get("model") != batch_model:
                self._fail(h, rec, 400, "INVALID_ARGUMENT", f"{where}.model: must be the model of the URL ({batch_model})")
                return
            parts = (req.get("content") or {}).get("parts") or []
            if not parts or any(_check_part(p, f"{where}.content") or "text" not in p for p in parts):
                self._fail(h, rec, 400, "INVALID_ARGUMENT", f"{where}.content: text parts are required")
                return
            dims = req.get("outputDimensionality", EMBEDDING_DIM)
            if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
                self._fail(h, rec, 400, "INVALID_ARGUMENT", f"{where}.output_dimensionality: Invalid value")
                return
            vectors.append(embedding_for("".join(p["text"] for p in parts))[:dims])
        rec.response.update(status=200, embeddings=vectors)
        if batch_model:
            h.send_json(200, {"embeddings": [{"values": v} for v in vectors]})
        else:
            h.send_json(200, {"embedding": {"values": vectors[0]}})


def _usage(candidates: int, final: bool) -> dict:
    usage = {"promptTokenCount": GEMINI_PROMPT_TOKENS, "candidatesTokenCount": candidates}
    if final:
        usage.update(
            thoughtsTokenCount=GEMINI_THOUGHTS,
            cachedContentTokenCount=GEMINI_CACHED,
            totalTokenCount=GEMINI_PROMPT_TOKENS + candidates + GEMINI_THOUGHTS,
            promptTokensDetails=[{"modality": "TEXT", "tokenCount": GEMINI_PROMPT_TOKENS}],
        )
    else:
        usage["totalTokenCount"] = GEMINI_PROMPT_TOKENS + candidates
    return usage


def _merge(frames: list[dict]) -> dict:
    """The whole response the frames of a stream add up to."""
    merged = {k: v for k, v in frames[-1].items() if k != "candidates"}
    if "candidates" in frames[-1]:
        candidate = dict(frames[-1]["candidates"][0])
        candidate["content"] = {"role": "model", "parts": [p for f in frames for p in f["candidates"][0]["content"]["parts"]]}
        merged["candidates"] = [candidate]
    return merged


__all__ = [
    "GEMINI_CACHED",
    "GEMINI_PROMPT_TOKENS",
    "GEMINI_THOUGHTS",
    "THOUGHT_TEXT",
    "GeminiUpstream",
    "make_service_account",
    "validate_gemini",
    "verify_rs256",
]
