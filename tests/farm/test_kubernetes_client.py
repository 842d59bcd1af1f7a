"""`trtbuild farm` through the official kubernetes client. No Kubernetes API server can run here (no
kube-apiserver, k3s or kind package), so a small stand-in on 127.0.0.1 answers the few REST calls the
farm makes (create ConfigMap and Job, set the ConfigMap's owner, read a Job and its pods, delete a Job)
and records them: the test checks what the client really sends and how status reads real API objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.farm.recipes import write_project

REPO = Path(__file__).resolve().parents[2]


class StandIn:
    """Objects by (kind, namespace, name); every request as (method, path, body)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.pods: list[dict] = []
        self.requests: list[tuple[str, str, dict | None]] = []


def _handler(api: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict | None:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n)) if n else None

        def _route(self, method: str) -> None:
            path = urlparse(self.path).path
            body = self._body()
            api.requests.append((method, path, body))
            parts = path.strip("/").split("/")
            # /api/v1/namespaces/NS/KIND[/NAME]  or  /apis/batch/v1/namespaces/NS/KIND[/NAME]
            i = parts.index("namespaces")
            ns, kind, name = parts[i + 1], parts[i + 2], (parts[i + 3] if len(parts) > i + 3 else None)
            if kind == "pods" and method == "GET":
                return self._send(
                    200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": api.pods}
                )
            key = (kind, ns, name or (body or {}).get("metadata", {}).get("name"))
            if method == "POST" and key in api.objects:
                return self._send(
                    409,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "AlreadyExists",
                        "code": 409,
                    },
                )
            if method == "POST":
                obj = {**body, "metadata": {**body["metadata"], "uid": str(uuid.uuid4())}}
                api.objects[key] = obj
                return self._send(201, obj)
            if key not in api.objects:
                return self._send(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                    },
                )
            if method == "GET":
                return self._send(200, api.objects[key])
            if method == "PATCH":
                api.objects[key]["metadata"].update(body["metadata"])
                return self._send(200, api.objects[key])
            if method == "DELETE":
                del api.objects[key]
                return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            return self._send(405, {})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@pytest.fixture
def cluster(tmp_path):
    api = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [
                    {"name": "test", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "test", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            }
        )
    )
    yield api, kubeconfig
    server.shutdown()
    server.server_close()


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_submit_status_cancel_through_the_client(cluster, tmp_path):
    pytest.importorskip("kubernetes")
    api, kubeconfig = cluster
    toolchains, recipes = write_project(tmp_path)
    state = tmp_path / "state.json"
    env = {
        "KUBECONFIG": str(kubeconfig),
        "TRTBUILD_DB_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "TRTBUILD_STORE_URL": f"file://{tmp_path / 'store'}",
    }
    common = ["--state", str(state), "--toolchains", str(toolchains)]
    submit = ["farm", "submit", "--scheduler", "kubernetes", "--namespace", "llm-build"]
    submit += ["--secret", "trtbuild-registry", "--trtbuild-package", "trtbuild[postgres]==0.1.0"]
    submit += [*common, "--json", *map(str, recipes)]
    sub = _cli(*submit, env=env)
    assert sub.returncode == 0, sub.stderr
    submitted = json.loads(sub.stdout)["submitted"]
    assert len(submitted) == 3
    posts = [(p.split("/")[-1], b["kind"]) for m, p, b in api.requests if m == "POST"]
    assert posts == [("configmaps", "ConfigMap"), ("jobs", "Job")] * 2
    jobs = {k[2]: o for k, o in api.objects.items() if k[0] == "jobs"}
    for name, job in jobs.items():
        owner = api.objects[("configmaps", "llm-build", name)]["metadata"]["ownerReferences"][0]
        assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job["metadata"]["uid"]}
    pair = next(n for n, j in jobs.items() if j["spec"]["completions"] == 2)
    assert {r["job_id"] for r in submitted} >= {f"llm-build/{pair}#0", f"llm-build/{pair}#1"}

    # the cluster runs them: index 0 of the pair done, index 1 running; the TP4 job still waiting
    jobs[pair]["status"] = {"completedIndexes": "0", "active": 1}
    api.pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{pair}-1-x", "labels": {"batch.kubernetes.io/job-completion-index": "1"}},
            "status": {"phase": "Running"},
        }
    ]
    st = _cli("farm", "status", *common, "--json", env=env)
    rows = {r["job_id"]: r for r in json.loads(st.stdout)["keys"]}
    assert rows[f"llm-build/{pair}#0"]["job_state"] == "succeeded"
    assert rows[f"llm-build/{pair}#1"]["job_state"] == "running"
    other = next(r for r in rows.values() if pair not in r["job_id"])
    assert other["job_state"] == "pending" and other["state"] == "pending"
    # a succeeded index without an engine in the registry is not a success
    assert rows[f"llm-build/{pair}#0"]["state"] == "failed" and st.returncode == 1

    cancel = _cli("farm", "cancel", "--all", *common, "--json", env=env)
    assert cancel.returncode == 0, cancel.stderr
    assert len(json.loads(cancel.stdout)["cancelled"]) == 2  # the running index and the pending TP4 key
    deleted = sorted(p.rsplit("/", 1)[1] for m, p, _ in api.requests if m == "DELETE")
    assert deleted == sorted(jobs)  # a Job cannot stop one index: both Jobs go
    gone = _cli("farm", "status", *common, "--json", env=env)
    assert {r["state"] for r in json.loads(gone.stdout)["keys"]} == {"lost"}

    # lost keys are submitted again, as new Jobs (the old names may still be taken in a real cluster)
    again = _cli(*submit, env=env)
    assert again.returncode == 0, again.stderr
    new_jobs = {k[2] for k in api.objects if k[0] == "jobs"}
    assert len(new_jobs) == 2 and not new_jobs & set(jobs)
