"""A local Ray instance (no `address=`) serves this machine only: every port it opens listens
on the loopback, never on the machine's network address."""

import ipaddress
import os

import pytest

from deepcast.tuning import ray_engine

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")  # a dependency of Ray
pytestmark = pytest.mark.slow


def test_a_local_instance_listens_on_the_loopback_only():
    assert not ray.is_initialized()
    try:
        assert ray_engine._connect(None, 1)  # started here

        @ray.remote
        def double(x):
            return 2 * x

        assert ray.get(double.remote(21)) == 42
        ours = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
        listening = [
            c.laddr.ip
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in ours
        ]
        assert len(listening) >= 3  # GCS, raylet, object manager, workers...
        for ip in listening:
            address = ipaddress.ip_address(ip)
            address = getattr(address, "ipv4_mapped", None) or address
            assert address.is_loopback, f"Ray listens on {ip}"
    finally:
        ray.shutdown()
