"""A Google Cloud Storage emulator on 127.0.0.1 for the tests of workdirs and checkpoints in a bucket.

`gcp-storage-emulator` serves the JSON API in memory; the clients hsijax's storage goes through are
pointed at it by their own settings: gcsfs (and so etils.epath) by ``STORAGE_EMULATOR_HOST``,
TensorStore (Orbax's array files) by ``TENSORSTORE_GCS_HTTP_URL``. No credentials are involved.

One gap of the emulator is filled here: GCS answers every object download with the object's
generation in an ``x-goog-generation`` header, and TensorStore needs it (its OCDBT reads fail with
"Malformed StorageGeneration" without it); the emulator (2026.7.19) leaves it out, so its download
handler is wrapped to send it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator

BUCKET = "bucket"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def emulator_environment(url: str) -> dict[str, str]:
    """The variables that send gcsfs/epath and TensorStore to the emulator at ``url``."""
    return {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url,
            # no credentials to look for: TensorStore takes this token, gcsfs goes anonymous for an
            # emulator, and its probe of the bucket type (a control-plane API the emulator lacks) is off
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


def _send_generation_on_download() -> None:
    """Make the emulator's download handler send ``x-goog-generation``, as GCS does (idempotent)."""
    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    original = objects.download
    if getattr(original, "sends_generation", False):
        return

    def download(request, response, storage, *args, **kwargs):
        original(request, response, storage, *args, **kwargs)
        try:
            file = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        except NotFound:
            return
        response["x-goog-generation"] = str(file["generation"])

    download.sends_generation = True
    objects.download = download  # objects.get calls it by name for ?alt=media
    server.HANDLERS = tuple((regex, {method: download if handler is original else handler
                                     for method, handler in handlers.items()})
                            for regex, handlers in server.HANDLERS)


@contextlib.contextmanager
def gcs_emulator() -> Iterator[dict[str, str]]:
    """Serve an empty in-memory bucket ``gs://bucket`` for the block, with this process's environment
    pointing at it; yields the variables to hand to subprocesses."""
    from gcp_storage_emulator.server import create_server

    _send_generation_on_download()
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    # Quiet: a missing object is an answer (Orbax probes for files), and a client closing a connection
    # early (TensorStore cancelling a read) is not a server error.
    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
    server._api._httpd.handle_error = lambda request, client_address: None
    variables = emulator_environment(f"http://127.0.0.1:{port}")
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield variables
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


def committed_steps(workdir: str) -> dict[str, bool]:
    """Each checkpoint step folder of ``workdir`` in the bucket, and whether Orbax committed it
    (``commit_success.txt``: on GCS, Orbax marks a finished checkpoint with that file instead of
    renaming a temporary folder)."""
    from etils import epath

    folder = epath.Path(workdir) / "checkpoints"
    if not folder.exists():
        return {}
    return {p.name: (p / "commit_success.txt").exists() for p in folder.iterdir() if p.name.isdigit()}
