"""Payments: idempotent writes, and an outbox that parks them while the provider is down.

Run it with ``python examples/payments.py``. Against the chaos upstream on 127.0.0.1:

1. A charge whose response is lost after the provider committed it: the client retries
   under the same ``Idempotency-Key`` (added for every POST), and the provider charges once.
2. The provider is down (``/outage/{name}`` answering 503): the charge fails after its
   retries and is *parked* in an outbox (a SQLite file) with its key; the caller gets
   ``rc.WriteParked`` at once instead of an error to handle.
3. The provider is back: ``outbox.replay(client)`` sends the parked charge again with the
   same key. Credentials are never stored: the replaying client's own headers are applied.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import resilient_client as rc
from resilient_client.chaos import serve

API_KEY = "sk_test_example_key"  # sent as a header; the outbox never stores it


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="rc-payments-"))
    outbox = rc.Outbox(f"sqlite:///{directory / 'outbox.db'}")
    with serve() as upstream:
        client = rc.ResilientClient(
            base_url=upstream.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            policy=rc.Policy(retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.02))),
            outbox=outbox,
            endpoints={
                # The real charge endpoint.
                "POST /payments/{name}": rc.Policy(),
                # A charge endpoint during an outage: park failed writes instead of losing them.
                "POST /outage/{name}": rc.Policy(outbox=True),
            },
        )
        with client:
            print("1. A lost response is retried under the same idempotency key:")
            response = client.post("/payments/shop?lose=1", json={"amount": 4200})
            info = rc.resilience_info(response)
            assert info is not None
            print(
                f"   POST /payments/shop -> {response.status_code} after {info.attempts} "
                f"attempts, key {info.idempotency_key}"
            )
            print(f"   charges the provider recorded: {upstream.app.effects('shop')}")

            print("\n2. The provider is down: the charge is parked, not lost:")
            upstream.app.set_failure_plan("charge", rate=1.0)
            try:
                client.post("/outage/charge", json={"amount": 1500, "order": "A-1001"})
            except rc.WriteParked as parked:
                entry = parked.entry
                print(
                    f"   rc.WriteParked: entry {entry.id} ({entry.endpoint}), key "
                    f"{entry.idempotency_key}, {entry.attempts} attempts, "
                    f"last error {entry.last_error}"
                )
            stored = outbox.get(entry.id)
            assert stored is not None
            names = ", ".join(name for name, _ in stored.headers)
            print(f"   stored headers: {names} (no Authorization: credentials are not kept)")

            print("\n3. The provider is back: replay the outbox:")
            upstream.app.set_failure_plan("charge", rate=0.0)
            result = outbox.replay(client)
            print(
                f"   delivered {len(result.delivered)}, dead {len(result.dead)}, "
                f"pending {len(result.pending)}"
            )
            seen = upstream.app.scenario("charge").requests[-1]
            print(
                f"   the replay carried the same key: "
                f"{seen.headers.get('idempotency-key') == entry.idempotency_key}"
            )
    outbox.close()
    print(
        f"\nThe outbox is {directory / 'outbox.db'}; "
        f"try: resilient-client outbox list --store sqlite:///{directory / 'outbox.db'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
