"""``python -m resilient_client.chaos --host 127.0.0.1 --port N``: see :func:`main`."""

from ._server import main

raise SystemExit(main())
