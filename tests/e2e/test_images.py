"""Image inputs: translated to Anthropic image source blocks, passed unchanged to OpenAI-compatible upstreams."""

from __future__ import annotations

from helpers import anthropic_blocks

# A real 1x1 PNG.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
DATA_URL = f"data:image/png;base64,{PNG_B64}"
HTTPS_URL = "https://example.com/images/cat.jpg"


def _content(nonce: str) -> list[dict]:
    return [
        {"type": "text", "text": f"What is in these images? {nonce}"},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
        {"type": "image_url", "image_url": {"url": HTTPS_URL, "detail": "low"}},
    ]


def test_images_reach_anthropic_as_source_blocks(client, upstreams, nonce):
    resp = client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": _content(nonce)}])
    rec = upstreams.anthropic.one(nonce)
    assert rec.response["status"] == 200, f"upstream rejected the translated request: {rec.response.get('error')}"
    blocks = anthropic_blocks(rec.body["messages"][0]["content"])
    assert [b["type"] for b in blocks] == ["text", "image", "image"], blocks
    assert blocks[0]["text"] == f"What is in these images? {nonce}"
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}
    assert blocks[2]["source"] == {"type": "url", "url": HTTPS_URL}
    assert resp.choices[0].message.content == rec.response["text"]


def test_images_reach_anthropic_when_streaming(client, upstreams, nonce):
    list(
        client.chat.completions.create(
            model="claude-sonnet", messages=[{"role": "user", "content": _content(nonce)}], stream=True
        )
    )
    rec = upstreams.anthropic.one(nonce)
    blocks = anthropic_blocks(rec.body["messages"][0]["content"])
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}


def test_images_reach_openai_upstream_unchanged(client, upstreams, nonce):
    content = _content(nonce)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    rec = upstreams.openai.one(nonce)
    assert rec.body["messages"] == [{"role": "user", "content": content}]
    assert resp.choices[0].message.content == rec.response["text"]
