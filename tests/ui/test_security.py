"""Security of the launched app (a real ``app.py`` subprocess): binding, auth, served paths, uploads, logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.review_world import REPO_ROOT, make_review_world, start_app, stop_app

PASSWORD = "Sup3r-S3cret-pa55"


def _app(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(REPO_ROOT), **(env_extra or {}))
    return subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(REPO_ROOT))


def test_exposure_rules():
    from rbft_core.errors import ConfigError
    from ui.app import check_exposure, parse_auth

    check_exposure("127.0.0.1", auth=None, share=False, insecure=False)  # local: fine without a password
    check_exposure("0.0.0.0", auth="a:b", share=False, insecure=False)
    check_exposure("0.0.0.0", auth=None, share=False, insecure=True)  # explicit opt-out
    with pytest.raises(ConfigError, match="--host 0.0.0.0 lets other machines reach the app; add --auth"):
        check_exposure("0.0.0.0", auth=None, share=False, insecure=False)
    with pytest.raises(ConfigError, match="--share publishes"):
        check_exposure("127.0.0.1", auth=None, share=True, insecure=False)
    with pytest.raises(ConfigError, match="must be user:pass") as info:
        parse_auth(f":{PASSWORD}")
    assert PASSWORD not in str(info.value)


def test_public_bind_without_auth_refuses_to_start(tmp_path):
    out = _app("--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2
    assert "--host 0.0.0.0 lets other machines reach the app; add --auth user:pass" in out.stderr
    assert "--insecure" in out.stderr
    bad = _app("--auth", f"alice{PASSWORD}", "--data-dir", str(tmp_path / "data"))  # no ':' in it
    assert bad.returncode == 2 and "must be user:pass" in bad.stderr
    assert PASSWORD not in bad.stderr + bad.stdout


@pytest.fixture
def secured_app(tmp_path, db_url, data_dir):
    from rbft_core.data.importer import import_videos

    ids = make_review_world(db_url, tmp_path / "w")
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "secret.txt").write_text("not for the web")
    (data_dir / "note.txt").write_text("inside the data directory")
    (tmp_path / "w" / "videos" / "evil.html").write_text("<script>alert(document.cookie)</script>")
    # The exploit of issue #14: a dataset imported from "/" (the CLI may import anywhere) records source_root "/".
    (tmp_path / "root.csv").write_text("path,label\netc/hostname,normal\n")
    import_videos(db_url, "rooted", "/", manifest=tmp_path / "root.csv", fmt="csv", labels=["normal", "abnormal"])
    # Bound off loopback (with a password), as a shared review server is.
    proc, url = start_app(db_url, data_dir, extra_args=("--host", "0.0.0.0", "--auth", f"alice:{PASSWORD}",
                                                        "--max-upload-mb", "0.01"))
    try:
        yield url, ids
    finally:
        stop_app(proc)


def _login(url: str, password: str = PASSWORD) -> tuple[int, dict]:
    response = httpx.post(f"{url}login", data={"username": "alice", "password": password}, timeout=30)
    cookies = "; ".join(f"{k}={v}" for k, v in response.cookies.items())
    return response.status_code, {"Cookie": cookies}


def test_only_the_apps_own_media_files_are_served(secured_app, tmp_path, data_dir, db_url):
    from rbft_core.cli.admin import backup_database
    from rbft_core.review import workspace as review
    from rbft_core.review.media import item_media

    url, ids = secured_app
    status, headers = _login(url)
    assert status == 200

    def get(path, **kw) -> httpx.Response:
        return httpx.get(f"{url}gradio_api/file={path}", timeout=30, **kw)

    def fetch(path, **kw) -> int:
        return get(path, **kw).status_code

    item = review.load_item(db_url, ids["clip_0"])
    media = item_media(item.video_path, item.sha256, (item.suggestion or {}).get("gen_params"))
    assert media.video and media.video.startswith(str(data_dir / "cache" / "media"))  # a link, not the source
    assert fetch(media.video) == 401  # nothing without logging in
    served = get(media.video, headers=headers)
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == (tmp_path / "w" / "videos" / "clip_0.mp4").read_bytes()
    frame = get(media.frames[0][0], headers=headers)
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"

    # the import folder itself is never a web root: neither the video's own path nor a page next to it
    assert fetch(tmp_path / "w" / "videos" / "clip_0.mp4", headers=headers) == 403
    assert fetch(tmp_path / "w" / "videos" / "evil.html", headers=headers) == 403
    # the dataset imported from "/" does not make "/" servable
    assert fetch("/etc/hostname", headers=headers) == 403
    assert fetch("/etc/passwd", headers=headers) == 403
    assert fetch(tmp_path / "sibling" / "secret.txt", headers=headers) == 403
    # nothing of the data directory but its media: notes, backups, the database, '..' out of it
    backup = backup_database(db_url, data_dir / "backups" / "before.db").target
    (data_dir / "rbft.db.bak").write_bytes(b"SQLite format 3\x00")
    for private in (data_dir / "note.txt", backup, data_dir / "rbft.db.bak", tmp_path / "rbft.db",
                    f"{data_dir}/../sibling/secret.txt", f"{data_dir}/cache/media/../../note.txt"):
        assert fetch(private, headers=headers) == 403, private
        assert httpx.get(f"{url}gradio_api/file/{private}", headers=headers, timeout=30).status_code in (403, 404)


def test_cross_origin_calls_are_refused_off_loopback(secured_app):
    url, _ids = secured_app
    evil = {"Origin": "https://evil.example"}
    assert httpx.post(f"{url}login", data={"username": "alice", "password": PASSWORD}, headers=evil,
                      timeout=30).status_code == 403  # no login CSRF
    status, headers = _login(url)
    upload = {"files": ("m.csv", b"path,label\n")}
    refused = httpx.post(f"{url}gradio_api/upload", files=upload, headers={**headers, **evil}, timeout=30)
    assert refused.status_code == 403 and "cross-origin request from https://evil.example refused" in refused.text
    assert refused.headers.get("access-control-allow-origin") != "https://evil.example"
    config = httpx.get(f"{url}config", headers={**headers, **evil}, timeout=30)
    assert config.status_code == 403
    own = {"Origin": url.rstrip("/")}  # the page's own origin, as a browser sends it
    assert httpx.post(f"{url}gradio_api/upload", files=upload, headers={**headers, **own}, timeout=30).status_code == 200


def test_upload_limit_and_password_never_logged(secured_app, data_dir):
    url, _ids = secured_app
    assert _login(url, "wrong-" + PASSWORD)[0] == 400
    status, headers = _login(url)
    small = httpx.post(f"{url}gradio_api/upload", files={"files": ("m.csv", b"path,label\n")}, headers=headers,
                       timeout=30)
    assert small.status_code == 200
    big = httpx.post(f"{url}gradio_api/upload", files={"files": ("m.csv", b"x" * 50_000)}, headers=headers,
                     timeout=30)
    assert big.status_code == 413 and "maximum allowed size" in big.text
    logs = "".join(p.read_text(errors="replace") for p in data_dir.glob("app-*.log"))
    assert "Running on" in logs or "http://127.0.0.1" in logs  # the log is the app's real output
    assert PASSWORD not in logs


def test_serve_never_adds_an_import_folder(tmp_path, db_url, data_dir):
    """Showing a file makes only the app's media folders servable; an import folder or "/" never is."""
    from rbft_core.review.media import media_dirs
    from ui import media

    make_review_world(db_url, tmp_path / "w")
    media.serve(db_url, "/etc/passwd", str(tmp_path / "w" / "videos" / "clip_0.mp4"))
    roots = set(media.served_roots())
    assert {str(d.resolve()) for d in media_dirs()} <= roots
    assert not any(root in ("/", "/etc") or root.startswith(str(tmp_path / "w")) for root in roots)
    with pytest.raises(ValueError, match="not one of the app's media folders"):
        media.serve_dirs("/")


def test_file_guard_decides_on_the_resolved_path(tmp_path):
    from ui.guard import FileGuard

    media, created = tmp_path / "data" / "cache" / "media", tmp_path / "gradio"
    (media / "ab").mkdir(parents=True)
    created.mkdir()
    (media / "ab" / "ab12.mp4").write_bytes(b"video")
    (media / "ab" / "page.html").write_text("<script></script>")
    (created / "out.png").write_bytes(b"png")
    (tmp_path / "outside.mp4").write_bytes(b"video")
    (media / "ab" / "escape.mp4").symlink_to(tmp_path / "outside.mp4")
    guard = FileGuard(None, media_roots=[media], created_roots=[created])
    assert guard.decide(f"/gradio_api/file={media}/ab/ab12.mp4") == (True, "video/mp4")
    assert guard.decide(f"/gradio_api/file={created}/out.png") == (True, None)  # Gradio's own copy of an output
    assert guard.decide(f"/gradio_api/file={media}/ab/page.html")[0] is False  # not a media type
    assert guard.decide(f"/gradio_api/file={media}/ab/escape.mp4")[0] is False  # a symlink out of the folder
    assert guard.decide(f"/gradio_api/file={media}/../../outside.mp4")[0] is False
    assert guard.decide(f"/gradio_api/file={tmp_path}/outside.mp4")[0] is False
    assert guard.decide("/gradio_api/file=https://example.org/x.mp4")[0] is False
    assert guard.decide("/gradio_api/queue/join") == (True, None)  # other routes are not its business


def test_origin_guard_allows_only_the_own_and_listed_origins():
    from ui.guard import OriginGuard, normalise_origin

    guard = OriginGuard(None, allowed=["https://Review.Example.org:443"])

    def scope(origin, host="10.0.0.5:7860", scheme="http"):
        headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
        return {"type": "http", "scheme": scheme, "headers": headers}

    assert guard.origin_ok(scope(None))[0]  # no Origin: not a browser's cross-site call
    assert guard.origin_ok(scope("http://10.0.0.5:7860"))[0]
    assert guard.origin_ok(scope("https://review.example.org"))[0]
    assert guard.origin_ok(scope("https://abc.gradio.live", host="abc.gradio.live"))[0]  # TLS ends before the app
    for bad in ("https://evil.example", "http://10.0.0.5:7861", "http://10.0.0.5", "null", "http://evil.10.0.0.5:7860"):
        assert not guard.origin_ok(scope(bad))[0], bad
    assert normalise_origin("HTTP://LocalHost:80/") == "http://localhost"


def test_import_roots_refuse_other_folders(tmp_path, db_url, data_dir, monkeypatch):
    """The web app imports only under --import-root / RBFT_IMPORT_ROOTS (default: data dir and home)."""
    from rbft_core.errors import ConfigError
    from rbft_core.settings import check_import_source, import_roots
    from rbft_core.tabs import datasets

    monkeypatch.delenv("RBFT_IMPORT_ROOTS", raising=False)
    assert import_roots() == [data_dir.resolve(), Path.home().resolve()]
    (tmp_path / "root.csv").write_text("path,label\netc/hostname,normal\n")
    with pytest.raises(ConfigError, match="outside the import roots .*--import-root / .* RBFT_IMPORT_ROOTS"):
        datasets.start_import(db_url, "rooted", "/", manifest=tmp_path / "root.csv", labels="normal,abnormal")
    (data_dir / "videos").mkdir()
    assert check_import_source(data_dir / "videos") == (data_dir / "videos").resolve()
    monkeypatch.setenv("RBFT_IMPORT_ROOTS", str(tmp_path / "share"))
    (tmp_path / "share" / "cams").mkdir(parents=True)
    (tmp_path / "share-evil").mkdir()
    (tmp_path / "share" / "cams" / "up").symlink_to(tmp_path / "share-evil")
    assert check_import_source(tmp_path / "share" / "cams") == (tmp_path / "share" / "cams").resolve()
    for outside in (tmp_path / "share-evil", tmp_path / "share" / "cams" / "up", data_dir):
        with pytest.raises(ConfigError, match="outside the import roots"):
            check_import_source(outside)


def test_old_uploads_are_cleaned(tmp_path):
    import os
    import time

    from ui.guard import clean_old_files

    old, fresh = tmp_path / "up" / "a1" / "old.csv", tmp_path / "up" / "b2" / "fresh.csv"
    for path in (old, fresh):
        path.parent.mkdir(parents=True)
        path.write_text("x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert clean_old_files(tmp_path / "up", 86400) == 1
    assert not old.exists() and not old.parent.exists() and fresh.exists()
