"""A Hugging Face Hub-compatible HTTP server for tests: model repos in memory, served on 127.0.0.1.

It implements the endpoints that huggingface_hub 2.4.0 calls for whoami, create_repo, create_commit
(pre-upload in "regular" mode, so file contents travel base64-encoded inside the NDJSON commit),
model_info / repo_info, list_repo_tree, hf_hub_download / snapshot_download and list_models. Errors carry
the `X-Error-Code` / `X-Error-Message` headers that huggingface_hub turns into its exception classes.

Any other request gets 501. It never gets 500, 502, 503 or 504, because the client retries those with a
backoff and a test would seem to hang.

    with HubServer(tokens={"hf_good": ("alice", "write")}) as hub:
        api = HfApi(endpoint=hub.url, token="hf_good")
"""

import base64
import datetime as dt
import hashlib
import json
import logging
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"

_REPO_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)$")


def git_blob_oid(content: bytes) -> str:
    """Git's object id of a blob: sha1 over "blob <size>\\0" and the content (what the Hub reports as oid)."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Commit:
    oid: str
    files: dict[str, bytes]
    message: str
    parent: str | None
    date: str


@dataclass
class Repo:
    """One model repo: its commits, branches and visibility."""

    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    downloads: int = 0

    def head(self, revision: str = "main") -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)

    def add_commit(self, files: dict[str, bytes], message: str, branch: str = "main") -> Commit:
        parent = self.branches.get(branch)
        digest = hashlib.sha1()
        digest.update((parent or "").encode() + message.encode() + _now().encode() + str(len(self.commits)).encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\x00" + git_blob_oid(files[path]).encode())
        commit = Commit(oid=digest.hexdigest(), files=dict(files), message=message, parent=parent, date=_now())
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


class _HubError(Exception):
    """An error response: status code, X-Error-Code and message."""

    def __init__(self, status: int, message: str, error_code: str | None = None, headers: dict | None = None, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}
        self.body = body


class HubServer:
    """A threaded HTTP server on 127.0.0.1 with in-memory model repos.

    Args:
        tokens: access token -> (user name, role), role "read" or "write". Requests with an unknown token get
            401 "Invalid credentials in Authorization header"; requests without a token are anonymous.
        orgs: user name -> organisations the user can write to.

    Attributes for tests: `url`, `repos`, `request_log` (method, path, had-authorization tuples, the token
    itself is never recorded), and `go_down_after_downloads(n)` to simulate an outage mid-download.
    """

    def __init__(self, tokens: dict[str, tuple[str, str]] | None = None, orgs: dict[str, list[str]] | None = None):
        self.tokens = dict(tokens or {})
        self.orgs = dict(orgs or {})
        self.repos: dict[str, Repo] = {}
        self.request_log: list[tuple[str, str, bool]] = []
        self.lock = threading.RLock()
        self.down = False
        self._downloads_before_outage: int | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> "HubServer":
        handler = type("BoundHubHandler", (_HubHandler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ---- test controls

    def go_down_after_downloads(self, count: int) -> None:
        """Serve `count` more file downloads in full, cut the next one off mid-body, then drop every request."""
        with self.lock:
            self._downloads_before_outage = count

    def create_repo_with_files(self, repo_id: str, files: dict[str, bytes], *, private: bool = False, message: str = "Add files") -> str:
        """Create (or extend) a repo directly, without HTTP; return the new commit oid."""
        with self.lock:
            repo = self.repos.get(repo_id) or self._new_repo(repo_id, private)
            merged = dict(repo.head().files)
            merged.update(files)
            return repo.add_commit(merged, message).oid

    def record_download(self, repo: Repo, path: str) -> bool:
        """Count one file download; return True when this one must be cut off (the outage starts)."""
        with self.lock:
            # Like the Hub, count a repo download per fetch of its config file.
            if path in ("adapter_config.json", "config.json"):
                repo.downloads += 1
            if self._downloads_before_outage is None:
                return False
            if self._downloads_before_outage == 0:
                self.down = True
                return True
            self._downloads_before_outage -= 1
            return False

    def _new_repo(self, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_id=repo_id, private=private, created_at=_now())
        repo.add_commit({".gitattributes": GITATTRIBUTES}, "initial commit")
        self.repos[repo_id] = repo
        return repo

    # ---- auth helpers used by the handler

    def user_for(self, authorization: str | None) -> tuple[str, str] | None:
        """Return (user, role) for the Authorization header, None when anonymous; raise 401 on a bad token."""
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise _HubError(401, INVALID_CREDENTIALS, headers={"X-Error-Message": INVALID_CREDENTIALS})
        return self.tokens[token]

    def visible_repo(self, repo_id: str, user: tuple[str, str] | None) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not self._can_write(repo_id, user)):
            raise _HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _can_write(self, repo_id: str, user: tuple[str, str] | None) -> bool:
        if user is None:
            return False
        name, _ = user
        namespace = repo_id.split("/")[0]
        return namespace == name or namespace in self.orgs.get(name, [])

    def writable_repo(self, repo_id: str, user: tuple[str, str] | None) -> Repo:
        repo = self.visible_repo(repo_id, user)
        self.require_write(repo_id, user)
        return repo

    def require_write(self, repo_id: str, user: tuple[str, str] | None) -> None:
        if user is None:
            raise _HubError(401, "You must be authenticated to write to a repo", headers={"X-Error-Message": "Unauthorized"})
        if user[1] != "write":
            raise _HubError(403, "This token has read access only", headers={"X-Error-Message": "Forbidden: token is read-only"})
        if not self._can_write(repo_id, user):
            raise _HubError(403, f"You don't have the rights to write to {repo_id}", headers={"X-Error-Message": "Forbidden"})


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by BaseHTTPRequestHandler
        logger.debug("hub server: " + format, *args)

    # ---- dispatch

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query)
        with hub.lock:
            hub.request_log.append((method, path, "Authorization" in self.headers))
            down = hub.down
        if down:
            self._drop_connection()
            return
        body = self._read_body() if method == "POST" else b""
        try:
            user = hub.user_for(self.headers.get("Authorization"))
            self._route(method, path, query, body, user)
        except _HubError as error:
            self._send_error(error)

    def _route(self, method, path, query, body, user) -> None:
        if method == "GET" and path == "/api/whoami-v2":
            return self._whoami(user)
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"), user)
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        if method == "GET" and path == "/api/models":
            return self._list_models(query, user)

        match = _REPO_API.match(path)
        if match:
            repo_id = match["repo"]
            rest = match["rest"] or ""
            if method == "GET" and rest == "":
                return self._model_info(repo_id, "main", user)
            if method == "GET" and rest.startswith("/revision/"):
                return self._model_info(repo_id, unquote(rest.removeprefix("/revision/")), user)
            if method == "GET" and rest.startswith("/tree/"):
                revision, _, subpath = rest.removeprefix("/tree/").partition("/")
                return self._tree(repo_id, unquote(revision), unquote(subpath), query, user)
            if method == "POST" and rest.startswith("/preupload/"):
                return self._preupload(repo_id, unquote(rest.removeprefix("/preupload/")), json.loads(body or b"{}"), query, user)
            if method == "POST" and rest.startswith("/commit/"):
                return self._commit(repo_id, unquote(rest.removeprefix("/commit/")), body, query, user)

        match = _RESOLVE.match(path)
        if match and method in ("GET", "HEAD"):
            return self._resolve(match["repo"], unquote(match["revision"]), unquote(match["path"]), method, user)

        raise _HubError(501, f"{method} {path} is not implemented by the test Hub server")

    # ---- endpoints

    def _whoami(self, user) -> None:
        if user is None:
            raise _HubError(401, "Unauthorized", headers={"X-Error-Message": "Unauthorized"})
        name, role = user
        orgs = [{"type": "org", "name": org} for org in self.hub.orgs.get(name, [])]
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(name.encode()).hexdigest()[:24],
                "name": name,
                "fullname": name.title(),
                "orgs": orgs,
                "auth": {"type": "access_token", "accessToken": {"displayName": "test token", "role": role}},
            }
        )

    def _create_repo(self, payload: dict, user) -> None:
        if user is None:
            raise _HubError(401, "You must be authenticated to create a repo", headers={"X-Error-Message": "Unauthorized"})
        namespace = payload.get("organization") or user[0]
        repo_id = f"{namespace}/{payload.get('name')}"
        if payload.get("type", "model") != "model":
            raise _HubError(400, "The test Hub server stores model repos only")
        hub = self.hub
        with hub.lock:
            hub.require_write(repo_id, user)
            url = f"{hub.url}/{repo_id}"
            if repo_id in hub.repos:
                raise _HubError(409, "You already created this model repo", body={"error": "You already created this model repo", "url": url})
            hub._new_repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        self._send_json({"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    def _validate_yaml(self, payload: dict) -> None:
        errors = []
        try:
            metadata = _front_matter(payload.get("content", ""))
        except yaml.YAMLError as error:
            errors.append({"message": f"Invalid YAML: {error}"})
        else:
            if metadata is not None and not isinstance(metadata, dict):
                errors.append({"message": "The YAML metadata must be a mapping"})
        if errors:
            self._send_json({"errors": errors, "warnings": []}, status=400)
        else:
            self._send_json({"errors": [], "warnings": []})

    def _model_info(self, repo_id: str, revision: str, user) -> None:
        with self.hub.lock:
            repo = self.hub.visible_repo(repo_id, user)
            commit = self._commit_for(repo, revision)
            self._send_json(self._model_json(repo, commit, siblings=True))

    def _tree(self, repo_id: str, revision: str, subpath: str, query: dict, user) -> None:
        with self.hub.lock:
            repo = self.hub.visible_repo(repo_id, user)
            commit = self._commit_for(repo, revision)
            recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
            prefix = subpath.strip("/") + "/" if subpath.strip("/") else ""
            entries, folders = [], set()
            for path in sorted(commit.files):
                if not path.startswith(prefix):
                    continue
                relative = path[len(prefix):]
                if "/" in relative and not recursive:
                    folders.add(prefix + relative.split("/")[0])
                    continue
                parts = relative.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folders.add(prefix + "/".join(parts[:depth]))
                content = commit.files[path]
                entries.append({"type": "file", "oid": git_blob_oid(content), "size": len(content), "path": path})
            if prefix and not entries and not folders:
                raise _HubError(404, f"{subpath} does not exist on {revision}", "EntryNotFound")
            tree = [{"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder} for folder in sorted(folders)]
            self._send_json(tree + entries)

    def _preupload(self, repo_id: str, revision: str, payload: dict, query: dict, user) -> None:
        with self.hub.lock:
            repo = self.hub.writable_repo(repo_id, user)
            commit = self._commit_for(repo, revision)
            files = []
            for entry in payload.get("files", []):
                path = _checked_path(entry.get("path", ""))
                existing = commit.files.get(path)
                files.append(
                    {
                        "path": path,
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_oid(existing) if existing is not None else None,
                    }
                )
            self._send_json({"files": files, "commitOid": commit.oid})

    def _commit(self, repo_id: str, revision: str, body: bytes, query: dict, user) -> None:
        if query.get("create_pr", ["0"])[0] == "1":
            raise _HubError(400, "The test Hub server does not support pull requests")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        hub = self.hub
        with hub.lock:
            repo = hub.writable_repo(repo_id, user)
            if revision not in repo.branches:
                raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            parent = repo.head(revision)
            if header.get("parentCommit") and header["parentCommit"] != parent.oid:
                raise _HubError(412, "The parent commit is not the head of the branch")
            files = dict(parent.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = _checked_path(value.get("path", ""))
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise _HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                    files[path] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if path not in files:
                        raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    for name in [name for name in files if name.startswith(path.rstrip("/") + "/")]:
                        del files[name]
                else:
                    raise _HubError(400, f"The test Hub server does not support commit operations of kind {key!r}")
            readme = files.get("README.md")
            if readme is not None:
                try:
                    _front_matter(readme.decode("utf-8"))
                except (yaml.YAMLError, UnicodeDecodeError) as error:
                    raise _HubError(400, f"Invalid README.md metadata: {error}")
            commit = repo.add_commit(files, header.get("summary", ""), branch=revision)
            url = f"{hub.url}/{repo_id}/commit/{commit.oid}"
        self._send_json({"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""})

    def _list_models(self, query: dict, user) -> None:
        author = query.get("author", [None])[0]
        filters = query.get("filter", [])
        search = query.get("search", [None])[0]
        limit = int(query.get("limit", ["1000"])[0])
        with self.hub.lock:
            items = []
            for repo in self.hub.repos.values():
                if repo.private and not self.hub._can_write(repo.repo_id, user):
                    continue
                if author and repo.repo_id.split("/")[0] != author:
                    continue
                if search and search.lower() not in repo.repo_id.lower():
                    continue
                item = self._model_json(repo, repo.head(), siblings=False)
                if not all(value in item["tags"] for value in filters):
                    continue
                items.append(item)
        items.sort(key=lambda item: item["lastModified"], reverse=True)
        self._send_json(items[:limit])

    def _resolve(self, repo_id: str, revision: str, path: str, method: str, user) -> None:
        hub = self.hub
        with hub.lock:
            repo = hub.visible_repo(repo_id, user)
            commit = self._commit_for(repo, revision)
            content = commit.files.get(path)
            if content is None:
                raise _HubError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": commit.oid})
            cut_off = method == "GET" and hub.record_download(repo, path)

        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("ETag", f'"{git_blob_oid(content)}"')
        self.send_header("X-Repo-Commit", commit.oid)
        self.send_header("Accept-Ranges", "none")
        self.end_headers()

        if method == "HEAD":
            return
        if cut_off:
            # The server "crashes" halfway through the body: the client sees a truncated response.
            self.wfile.write(content[: len(content) // 2])
            self.wfile.flush()
            self._drop_connection()
            return
        self.wfile.write(content)

    # ---- helpers

    def _commit_for(self, repo: Repo, revision: str) -> Commit:
        commit = repo.head(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _model_json(self, repo: Repo, commit: Commit, siblings: bool) -> dict:
        card = {}
        readme = commit.files.get("README.md")
        if readme is not None:
            try:
                card = _front_matter(readme.decode("utf-8")) or {}
            except (yaml.YAMLError, UnicodeDecodeError):
                card = {}
        tags = _tags_from_card(card)
        item = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": repo.downloads,
            "likes": 0,
            "tags": tags,
            "library_name": card.get("library_name"),
            "pipeline_tag": card.get("pipeline_tag"),
        }
        if siblings:
            item["siblings"] = [{"rfilename": path} for path in sorted(commit.files)]
            item["cardData"] = card
            item["usedStorage"] = sum(len(content) for content in commit.files.values())
        return item

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, payload, status: int = 200, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, error: _HubError) -> None:
        headers = dict(error.headers)
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
            headers.setdefault("X-Error-Message", error.message)
        self._send_json(error.body or {"error": error.message}, status=error.status, headers=headers)

    def _drop_connection(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _checked_path(path: str) -> str:
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
        raise _HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _front_matter(text: str):
    """Parse a README's YAML metadata block; None when it has none."""
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end == -1:
        return None
    return yaml.safe_load(text[3:end])


def _tags_from_card(card: dict) -> list[str]:
    """Derive repo tags the way the Hub does: card tags, library, pipeline, license, datasets, base model."""
    tags = list(card.get("tags") or [])
    if card.get("library_name"):
        tags.append(card["library_name"])
    if card.get("pipeline_tag"):
        tags.append(card["pipeline_tag"])
    if card.get("license"):
        tags.append(f"license:{card['license']}")
    for dataset in card.get("datasets") or []:
        tags.append(f"dataset:{dataset}")
    base_models = card.get("base_model")
    for base_model in [base_models] if isinstance(base_models, str) else base_models or []:
        relation = "adapter" if card.get("library_name") == "peft" else "finetune"
        tags.append(f"base_model:{relation}:{base_model}")
    return list(dict.fromkeys(str(tag) for tag in tags))
