"""A local stand-in for the Hugging Face Hub's `resolve` endpoint, for tests of weight loading.

It answers HEAD and GET on /{owner}/{repo}/resolve/{revision}/{filename} with the headers that
huggingface_hub's real client reads (X-Repo-Commit, ETag, Content-Length), so the real
hf_hub_download runs against it when HF_ENDPOINT points here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubStandIn:
    def __init__(self, files: dict[str, bytes], delay_s: float = 0.0):
        self.files = files  # "owner/repo/revision/filename" -> content
        self.delay_s = delay_s  # a slow Hub: every answer waits this long
        self.requests: list[tuple[str, str]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                standin.requests.append((self.command, self.path))
                time.sleep(standin.delay_s)
                parts = self.path.split("?")[0].strip("/").split("/")
                key = "/".join(parts[:2] + parts[3:]) if len(parts) >= 5 and parts[2] == "resolve" else None
                content = standin.files.get(key) if key else None
                if content is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = hashlib.sha256(content).hexdigest()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", hashlib.sha1(parts[3].encode()).hexdigest())
                self.end_headers()
                if body:
                    self.wfile.write(content)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HubStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
