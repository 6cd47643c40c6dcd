"""Launch the RB-FT Studio web app. Flags and GRADIO_* environment variables; nothing else lives here."""

from __future__ import annotations

import argparse
import os
import sys

from rbft_core.errors import RbftError
from ui.app import launch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="RB-FT Studio web app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--db", default=None, help="database URL (default: RBFT_DATABASE_URL or data/rbft.db)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: RBFT_DATA_DIR or ./data)")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--auth", default=os.environ.get("RBFT_AUTH"),
                        help="user:pass (one login, an admin), or db: the logins added with `rbft users add NAME "
                             "--role reviewer|adjudicator|admin` (default: RBFT_AUTH, which keeps a password out of "
                             "the process list); required to bind a non-local address or --share")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-local --host or --share without --auth (anyone who reaches it can review)")
    parser.add_argument("--import-root", action="append", default=[], metavar="FOLDER",
                        help="a folder the Datasets tab may import videos from (repeat for several; default: "
                             "RBFT_IMPORT_ROOTS, else the data directory and your home folder)")
    parser.add_argument("--allowed-origin", action="append",
                        default=[o for o in os.environ.get("RBFT_ALLOWED_ORIGINS", "").split(",") if o.strip()],
                        metavar="ORIGIN", help="another web origin (https://host[:port]) allowed to call the app from "
                                               "a browser (default: RBFT_ALLOWED_ORIGINS; the app's own origin only)")
    parser.add_argument("--max-upload-mb", type=float, default=float(os.environ.get("RBFT_MAX_UPLOAD_MB", "500")),
                        help="largest accepted upload in MB (default 500)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["RBFT_DATA_DIR"] = args.data_dir

    try:
        return launch(host=args.host, port=args.port, db_url=args.db, share=args.share, auth=args.auth,
                      insecure=args.insecure, max_upload_mb=args.max_upload_mb, import_root=args.import_root,
                      allowed_origins=args.allowed_origin)
    except RbftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
