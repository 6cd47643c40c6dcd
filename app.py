"""Launch the RB-FT Studio web app. Flags and GRADIO_* environment variables; nothing else lives here."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="RB-FT Studio web app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--db", default=None, help="database URL (default: RBFT_DATABASE_URL or data/rbft.db)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: RBFT_DATA_DIR or ./data)")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--auth", default=None, help="user:pass (required to bind a non-local address)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["RBFT_DATA_DIR"] = args.data_dir
    from ui.app import launch

    return launch(host=args.host, port=args.port, db_url=args.db, share=args.share, auth=args.auth)


if __name__ == "__main__":
    sys.exit(main())
