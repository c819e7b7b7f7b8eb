"""Hosts on one machine: Linux network namespaces joined by veth pairs (``ip netns``), for MQTT tests whose
broker and workers must sit on separate network stacks, with a link that can go down.

Topology: the broker's host ``b`` has a veth pair to the test's own (root) namespace and one to each worker
host; each pair is its own /24 (10.77.<k>.1 on the broker's side, .2 on the other). Workers reach the broker at
``broker_ip(k)``; the test reaches it at ``broker_ip(0)``."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field


class NetnsUnavailable(RuntimeError):
    """``ip netns`` is not permitted here (not root, no ``ip``, or a sandbox without network namespaces)."""


def ip(*args: str, netns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", netns] if netns else []) + ["ip", *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise NetnsUnavailable(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")


@dataclass
class Hosts:
    """``workers`` worker hosts and a broker host; ``close`` removes them (and their veths)."""

    workers: int
    tag: str = field(default_factory=lambda: f"t{os.getpid() % 100000}")
    made: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)

    @property
    def broker(self) -> str:
        return f"{self.tag}b"

    def worker(self, k: int) -> str:
        """The namespace of worker host ``k`` (1-based)."""
        return f"{self.tag}w{k}"

    def link(self, k: int) -> str:
        """The veth end inside worker host ``k`` (down: the host loses the broker)."""
        return f"{self.tag}v{k}w"

    @staticmethod
    def broker_ip(k: int) -> str:
        return f"10.77.{k}.1"

    def open(self) -> Hosts:
        if os.geteuid() != 0:
            raise NetnsUnavailable("ip netns needs root")
        try:
            for ns in [self.broker] + [self.worker(k) for k in range(1, self.workers + 1)]:
                ip("netns", "add", ns)
                self.made.append(ns)
                ip("link", "set", "lo", "up", netns=ns)
            for k in range(0, self.workers + 1):
                self._pair(k)
        except NetnsUnavailable:
            self.close()
            raise
        return self

    def _pair(self, k: int) -> None:
        """A veth pair between the broker host and host ``k`` (0: the test's own namespace)."""
        near, far = f"{self.tag}v{k}b", (f"{self.tag}v{k}r" if k == 0 else self.link(k))
        ip("link", "add", near, "type", "veth", "peer", "name", far)
        if k == 0:
            self.root_links.append(far)
        ip("link", "set", near, "netns", self.broker)
        ip("addr", "add", f"{self.broker_ip(k)}/24", "dev", near, netns=self.broker)
        ip("link", "set", near, "up", netns=self.broker)
        host = None if k == 0 else self.worker(k)
        if host is not None:
            ip("link", "set", far, "netns", host)
        ip("addr", "add", f"10.77.{k}.2/24", "dev", far, netns=host)
        ip("link", "set", far, "up", netns=host)

    def set_link(self, k: int, up: bool) -> None:
        ip("link", "set", self.link(k), "up" if up else "down", netns=self.worker(k))

    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def close(self) -> None:
        for link in self.root_links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()
        self.root_links.clear()
