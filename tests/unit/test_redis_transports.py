"""A durable shard over each transport replay.redis_url accepts besides redis://: rediss://
(TLS, against a server with a self-signed certificate made here) and unix:// (a socket)."""

import shutil
import socket
import subprocess
import time
import uuid

import pytest

from tests.conftest import make_batch
from textdqn.replay_server.redis_connection import RedisSpec
from textdqn.replay_server.shard import ReplayShard

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("openssl") is None,
    reason="needs redis-server and openssl (apt-get install redis-server openssl)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """redis-server with a TLS port and a unix socket; yields (rediss URL, unix URL)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    port, sock = _free_port(), d / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(d / "cert.pem"),
         "--tls-key-file", str(d / "key.pem"), "--tls-ca-cert-file", str(d / "cert.pem"),
         "--tls-auth-clients", "no", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 10
    while not sock.exists():
        assert time.time() < deadline and server.poll() is None, "redis-server with TLS did not start"
        time.sleep(0.05)
    yield f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={d / 'cert.pem'}", f"unix://{sock}?db=0"
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.parametrize("transport", ["rediss", "unix"])
def test_a_shard_keeps_and_reloads_its_items_over(tls_server, transport):
    url = tls_server[0] if transport == "rediss" else tls_server[1]
    spec = RedisSpec(url, f"t{uuid.uuid4().hex[:10]}", 0, flush_s=3600.0)
    shard = ReplayShard(capacity=100, durable=spec)
    shard.insert(make_batch(0, 30, with_priority=True))
    shard.close()
    again = ReplayShard(capacity=100, durable=spec)
    assert again.info().restored_items == 30 and again.info().inserts == 30
    seen = set(again.sample(256).batch.obs[:, 0].astype(int).tolist())
    assert seen <= set(range(30)) and len(seen) > 20  # the reloaded rows, not zeros
    again.close()
