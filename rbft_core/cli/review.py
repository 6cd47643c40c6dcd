"""``rbft users``, ``rbft review-settings``, ``rbft dimensions`` and ``rbft quality``: logins and roles, reviews per
item and adjudication, a dataset's rationale dimensions, and the review quality report.

    rbft users add NAME --role reviewer|adjudicator|admin     (the password is asked for, or read from stdin)
    rbft review-settings DATASET --k 2 --adjudicator cara
    rbft dimensions DATASET [--set 'subjects: who or what appears; speech?: on-screen text'] [--rename old=new]
    rbft quality DATASET [--json] [--plots DIR]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, Callable

from db.engine import init_db
from rbft_core import auth
from rbft_core.data.dimensions import change_dimensions, parse_renames, show_dimensions
from rbft_core.errors import ConfigError
from rbft_core.review import adjudication
from rbft_core.review.quality_plots import write_quality_plots
from rbft_core.review.quality_report import render_quality_markdown
from rbft_core.review.quality_source import dataset_quality

__all__ = ["register"]

JSON_HELP = "print the result as one JSON object (default: off)"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        raise ConfigError("the two passwords differ; nothing was stored")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    init_db(args.db)
    if args.users_command == "add":
        auth.add_user(args.db, args.name, args.role, _password(args))
        print(f"user {args.name} added ({args.role}); start the app with --auth db to sign in with it")
    elif args.users_command == "role":
        auth.set_role(args.db, args.name, args.role)
        print(f"user {args.name} is now a {args.role}")
    elif args.users_command == "remove":
        auth.remove_user(args.db, args.name)
        print(f"user {args.name} removed")
    else:
        users = auth.list_users(args.db)
        print(json.dumps({"users": users}) if args.json else
              "\n".join(f"{u['name']} ({u['role']})" for u in users) or "no users yet; `rbft users add NAME --role admin`")
    return 0


def cmd_review_settings(args: argparse.Namespace) -> int:
    init_db(args.db)
    if args.k is None and args.adjudicator is None:
        settings = adjudication.settings(args.db, args.dataset)
    else:  # the CLI runs as the machine's user: an admin (the web app checks the login's role)
        settings = adjudication.change_settings(args.db, args.dataset, getpass.getuser(), reviews_per_item=args.k,
                                                adjudicators=args.adjudicator)
    assigned = ", ".join(settings["adjudicators"]) or "any adjudicator or admin"
    print(json.dumps(settings) if args.json else
          f"{args.dataset}: {settings['reviews_per_item']} review(s) per item; adjudication: {assigned}")
    return 0


def cmd_dimensions(args: argparse.Namespace) -> int:
    init_db(args.db)
    if args.set is None and not args.rename:
        result = show_dimensions(args.db, args.dataset)
    else:  # the CLI runs as the machine's user: an admin
        result = change_dimensions(args.db, args.dataset, definition=args.set, renames=parse_renames(args.rename))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{args.dataset}: {len(result['dimensions'])} rationale dimension(s)")
    for d in result["dimensions"]:
        print(f"  {d['name']}{'' if d['required'] else ' (optional)'}: {d['description']}  [{d['text']}]")
    for note in result["notes"]:
        print(f"note: {note}")
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    init_db(args.db)
    report = dataset_quality(args.db, args.dataset, with_responses=args.json)
    if args.plots:
        report["plots"] = {name: str(path) for name, path in write_quality_plots(report, args.plots).items()}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
    else:
        print(render_quality_markdown(report), end="")
        for name, path in (report.get("plots") or {}).items():
            print(f"plot {name}: {path}")
    return 0


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("users", help="the web app's logins and their roles (for app.py --auth db)")
    users = p.add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="add a login; the password is asked for (or read from stdin)")
    add.add_argument("name", help="login name")
    add.add_argument("--role", choices=auth.ROLES, default="reviewer", help="reviewer, adjudicator or admin "
                     "(default: reviewer)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of "
                     "stdin (default: off: asked twice on a terminal, read from stdin otherwise)")
    role = users.add_parser("role", help="change the role of a login")
    role.add_argument("name", help="login name")
    role.add_argument("role", choices=auth.ROLES, help="the new role")
    remove = users.add_parser("remove", help="remove a login")
    remove.add_argument("name", help="login name")
    listing = users.add_parser("list", help="list the logins and their roles")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    for parser in (add, role, remove, listing):
        common(parser)
        parser.set_defaults(func=cmd_users)

    p = sub.add_parser("review-settings", help="show or set a dataset's reviews per item and its adjudicators")
    p.add_argument("dataset", help="dataset name")
    p.add_argument("--k", type=int, default=None, help="reviews per item, 1-20 (default: unchanged)")
    p.add_argument("--adjudicator", action="append", default=None, metavar="LOGIN",
                   help="a login assigned to adjudicate; repeat for several, --adjudicator '' for any adjudicator "
                        "(default: unchanged)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p)
    p.set_defaults(func=cmd_review_settings)

    p = sub.add_parser("dimensions", help="show, redefine or rename a dataset's rationale dimensions")
    p.add_argument("dataset", help="dataset name")
    p.add_argument("--set", default=None, metavar="TEXT",
                   help="the new definition: 'name: description' per line or ';'-separated, '?' after an optional "
                        "one's name; refused if it leaves out a dimension that holds text (default: unchanged)")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="rename a dimension and move its text in every suggestion, review, response and revision, "
                        "in one transaction; repeat for several (default: none)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p)
    p.set_defaults(func=cmd_dimensions)

    p = sub.add_parser("quality", help="review quality: agreement, suggestion vs final, throughput")
    p.add_argument("dataset", help="dataset name")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object, with the exported "
                   "responses it was computed from (default: off, Markdown)")
    p.add_argument("--plots", default="", metavar="DIR", help="also write the three plots as PNGs into DIR "
                   "(default: none)")
    common(p)
    p.set_defaults(func=cmd_quality)
