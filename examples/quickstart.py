"""Quickstart: a resilient client riding through a flaky upstream on loopback.

The demo's code is ``resilient_client/_demo.py`` (so ``resilient-client demo`` runs the
same thing); read it for the calls it makes. The essentials::

    import resilient_client as rc

    client = rc.ResilientClient(
        base_url="https://api.example.com",
        policy=rc.Policy(retry=rc.Retry(max_attempts=4), timeouts=rc.Timeouts(total=10.0)),
        endpoints={"POST /v1/payments": rc.Policy(retry=rc.Retry(max_attempts=5))},
    )
    response = client.get("/v1/users/42")          # retried through 503s, Retry-After, drops
    response.extensions["resilience"].attempts     # what the pipeline did
"""

import sys

from resilient_client._demo import main

if __name__ == "__main__":
    sys.exit(main())
