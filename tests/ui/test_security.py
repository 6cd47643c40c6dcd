"""Security of the launched app (a real ``app.py`` subprocess): binding, auth, served paths, uploads, logs."""

from __future__ import annotations

import subprocess
import sys

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
    ids = make_review_world(db_url, tmp_path / "w")
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "secret.txt").write_text("not for the web")
    (data_dir / "note.txt").write_text("inside the data directory")
    proc, url = start_app(db_url, data_dir, extra_args=("--auth", f"alice:{PASSWORD}", "--max-upload-mb", "0.01"))
    try:
        yield url, ids
    finally:
        stop_app(proc)


def _login(url: str, password: str = PASSWORD) -> tuple[int, dict]:
    response = httpx.post(f"{url}login", data={"username": "alice", "password": password}, timeout=30)
    cookies = "; ".join(f"{k}={v}" for k, v in response.cookies.items())
    return response.status_code, {"Cookie": cookies}


def test_only_the_data_dir_and_source_roots_are_served(secured_app, tmp_path, data_dir):
    url, _ids = secured_app
    status, headers = _login(url)
    assert status == 200

    def fetch(path, **kw) -> int:
        return httpx.get(f"{url}gradio_api/file={path}", timeout=30, **kw).status_code

    assert fetch(data_dir / "note.txt") == 401  # nothing without logging in
    assert fetch(data_dir / "note.txt", headers=headers) == 200
    assert fetch(tmp_path / "w" / "videos" / "clip_0.mp4", headers=headers) == 200  # an imported source root
    assert fetch("/etc/passwd", headers=headers) == 403
    assert fetch(tmp_path / "sibling" / "secret.txt", headers=headers) == 403  # next to the data dir
    assert fetch(tmp_path / "rbft.db", headers=headers) == 403  # the database itself
    assert fetch(f"{data_dir}/../sibling/secret.txt", headers=headers) == 403  # '..' out of the data dir


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


def test_serve_adds_only_imported_source_roots(tmp_path, db_url, data_dir):
    """A shown file makes its dataset's source root servable; a file under no source root never is."""
    from ui import media

    make_review_world(db_url, tmp_path / "w")
    (tmp_path / "other").mkdir()
    media.serve(db_url, "/etc/passwd", str(tmp_path / "other" / "x.mp4"))
    roots = media.served_roots()
    assert "/etc" not in roots and str((tmp_path / "other").resolve()) not in roots
    media.serve(db_url, str(tmp_path / "w" / "videos" / "clip_0.mp4"))
    assert str((tmp_path / "w" / "videos").resolve()) in media.served_roots()
