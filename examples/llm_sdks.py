"""The OpenAI and Anthropic SDKs over a resilient client.

Run it with ``python examples/llm_sdks.py`` (needs ``pip install openai anthropic`` and the
``httpx2`` extra). Both SDKs take an ``http_client=``; give them one of
``resilient_client.httpx2``'s clients (the SDKs are built on httpx2) and turn their own
retries off (``max_retries=0``), so that one policy decides: retries with backoff that
honour the provider's Retry-After, a retry budget, a breaker per endpoint, and a deadline.

The chaos upstream plays both APIs on 127.0.0.1 (``/vendor/{name}/openai/v1/...``,
``/vendor/{name}/anthropic/v1/...``): by default each name answers 429, then 500, then 200.
"""

from __future__ import annotations

import sys

import anthropic
import openai

import resilient_client as rc
from resilient_client import httpx2 as rc2
from resilient_client.chaos import serve

POLICY = rc.Policy(
    timeouts=rc.Timeouts(total=20.0),
    retry=rc.Retry(max_attempts=4, backoff=rc.Backoff(initial=0.05)),
)


def main() -> int:
    with serve() as upstream:
        with rc2.ResilientClient(policy=POLICY) as http_client:
            client = openai.OpenAI(
                base_url=f"{upstream.url}/vendor/chat/openai/v1",
                api_key="sk-example-not-a-real-key",
                http_client=http_client,
                max_retries=0,  # our pipeline retries; the SDK must not retry on top of it
            )
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}]
            )
            completion = raw.parse()
            info = rc.resilience_info(raw.http_response)
            assert info is not None
            print(
                f"OpenAI: {completion.choices[0].message.content!r} after {info.attempts} "
                f"attempts (retried after {', '.join(info.retry_reasons)})"
            )

        with rc2.ResilientClient(policy=POLICY) as http_client:
            claude = anthropic.Anthropic(
                base_url=f"{upstream.url}/vendor/messages/anthropic",
                api_key="sk-ant-example-not-a-real-key",
                http_client=http_client,
                max_retries=0,
            )
            message = claude.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "Say hello."}],
            )
            text = "".join(block.text for block in message.content if block.type == "text")
            attempts = upstream.app.scenario("messages").attempts
            print(f"Anthropic: {text!r} after {attempts} attempts (429, 500, then 200)")

        # A provider that keeps failing: the SDK raises its own error type, as it would
        # without us, after our retries; the status and request id are the provider's.
        with rc2.ResilientClient(policy=POLICY) as http_client:
            client = openai.OpenAI(
                base_url=f"{upstream.url}/vendor/down-always-500/openai/v1",
                api_key="sk-example-not-a-real-key",
                http_client=http_client,
                max_retries=0,
            )
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
                )
            except openai.InternalServerError as exc:
                print(
                    f"OpenAI down: {type(exc).__name__} {exc.status_code}, "
                    f"request id {exc.request_id}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
