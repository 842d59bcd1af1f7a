"""A stand-in for the Hugging Face Hub on 127.0.0.1 (tests point HF_ENDPOINT at it; nothing reaches the
real Hub): serves given files of one repo at one commit through the /resolve/ endpoints huggingface_hub
downloads from, 404 for everything else, and records each request path."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hub_standin(repo: str, commit: str, files: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """(endpoint URL, list of requested paths) while the server runs."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _answer(self, with_body: bool) -> None:
            requests.append(self.path)
            prefix = f"/{repo}/resolve/{commit}/"
            name = self.path.removeprefix(prefix) if self.path.startswith(prefix) else None
            body = files.get(name) if name else None
            if body is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{hashlib.sha1(body).hexdigest()}"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", requests
    finally:
        server.shutdown()
        server.server_close()
