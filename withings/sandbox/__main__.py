"""``python -m withings.sandbox --port 8765 --client-id ID --client-secret S --redirect-uri URI``"""

from __future__ import annotations

import argparse
import threading

from ._measures import ORDERS
from .server import start_sandbox
from .state import SandboxState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m withings.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument(
        "--redirect-uri", action="append", required=True, help="registered callback URL (repeatable)"
    )
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--auto-approve", action="store_true")
    parser.add_argument("--more-as-bool", action="store_true")
    parser.add_argument(
        "--order", choices=ORDERS, default="created", help="getmeas order (default: as real answers)"
    )
    parser.add_argument("--no-rate-limit", action="store_true")
    parser.add_argument("--control-token", default=None)
    args = parser.parse_args(argv)

    state = SandboxState(
        page_size=args.page_size,
        auto_approve=args.auto_approve,
        more_as_bool=args.more_as_bool,
        order=args.order,
        rate_limit_per_minute=None if args.no_rate_limit else 120,
        identical_call_window=0.0 if args.no_rate_limit else 10.0,
    )
    state.register_client(args.client_id, args.client_secret, args.redirect_uri)
    running = start_sandbox(state, args.host, args.port, control_token=args.control_token)
    print(f"Withings sandbox on {running.url}  (control API: {running.url}/_sandbox/)", flush=True)  # noqa: T201
    print(f"  WITHINGS_API_URL={running.url}  WITHINGS_AUTH_URL={running.url}", flush=True)  # noqa: T201
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()
