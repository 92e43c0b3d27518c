"""The container path end to end: both images built with podman, docker/compose.yaml run with podman-compose,
a real call through the Asterisk container, its verdict read from the callkeeper container's API.

Needs root, podman (runc), podman-compose and the CNI dnsname plugin (`.ci/run` installs them); it never
skips. The base images are cached between runs (docker/build-base-images); the two images, the containers,
their network and volumes are this run's own and removed at the end. podman is configured by a
containers.conf written here (CONTAINERS_CONF), so the machine's own configuration stays as it is.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
CNI_IPAM = Path("/var/lib/cni/networks")
DIALLED = "+12125550100"  # line main of docker/callkeeper.yaml

pytestmark = pytest.mark.containers
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Images:
    callkeeper: str
    asterisk: str


@dataclass(frozen=True, slots=True)
class Stack:
    """The compose project as it runs: its containers and the values compose was given."""

    project: str
    env: dict[str, str]
    api_url: str
    token: str

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"


def run(
    *command: str, env: dict[str, str], timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed (exit {done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}",
            pytrace=False,
        )
    return done


def key_values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def containers_conf(directory: Path) -> Path:
    """runc (crun fails on cgroup v1 hosts), CNI with dnsname (service names resolve), and ulimits no
    higher than this process has: podman's defaults exceed what root may set in some VMs."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 16384)
    path = directory / "containers.conf"
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        "[network]\n"
        'network_backend = "cni"\n'
    )
    return path


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.fail("the container test needs root (rootful podman)", pytrace=False)
    for tool in ("podman", "runc", "podman-compose", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (.ci/run installs it)", pytrace=False)
    directory = tmp_path_factory.mktemp("podman")
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf(directory))}


@pytest.fixture(scope="module")
def images(podman_env: dict[str, str]) -> Iterator[Images]:
    run_id = secrets.token_hex(4)
    env = {
        **podman_env,
        "CALLKEEPER_IMAGE": f"localhost/callkeeper-test:{run_id}",
        "ASTERISK_IMAGE": f"localhost/callkeeper-asterisk-test:{run_id}",
        "PYTHON": sys.executable,
    }
    try:
        built = key_values(run(str(DOCKER / "build-images"), env=env, timeout=1200).stdout)
        yield Images(callkeeper=built["CALLKEEPER_IMAGE"], asterisk=built["ASTERISK_IMAGE"])
    finally:
        run("podman", "rmi", "--ignore", env["CALLKEEPER_IMAGE"], env["ASTERISK_IMAGE"], env=env, check=False)


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_range(count: int) -> str:
    """`first-last` of `count` consecutive UDP ports that are free on 127.0.0.1 now."""
    for _ in range(50):
        first = 20000 + secrets.randbelow(30000)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return f"{first}-{first + count - 1}"
    raise AssertionError(f"no {count} consecutive free UDP ports")


def project_copy(directory: Path) -> Path:
    """The compose file in a folder of links to the repository: compose reads no developer's docker/.env
    (podman-compose lets it override the environment), and every relative path still resolves."""
    (directory / "docker").mkdir()
    for entry in DOCKER.iterdir():
        if entry.name != ".env":
            (directory / "docker" / entry.name).symlink_to(entry)
    for name in ("asterisk-conf", "dialplan"):
        (directory / name).symlink_to(ROOT / name)
    return directory / "docker" / "compose.yaml"


def api(stack: Stack, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(stack.api_url + path, headers={"Authorization": f"Bearer {stack.token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code, None
    except OSError:
        return 0, None


def wait_for(what: str, check: Callable[[], T | None], timeout: float, stack: Stack) -> T:
    """The first truthy result of `check`; fails the test with both containers' last log lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    logs = {
        service: run("podman", "logs", "--tail", "40", stack.container(service), env=stack.env, check=False)
        for service in ("asterisk", "callkeeper")
    }
    pytest.fail(
        f"{what} within {timeout} s\n"
        + "\n".join(f"---- {name}:\n{done.stdout}{done.stderr}" for name, done in logs.items()),
        pytrace=False,
    )


@pytest.fixture(scope="module")
def stack(
    images: Images, podman_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    project = f"callkeepertest{secrets.token_hex(4)}"
    token = secrets.token_hex(24)
    env = {
        **podman_env,
        "CALLKEEPER_ARI_PASSWORD": secrets.token_hex(24),
        "CALLKEEPER_API_TOKEN": token,
        "CALLKEEPER_IMAGE": images.callkeeper,
        "ASTERISK_IMAGE": images.asterisk,
        "ASTERISK_PUBLISH_ADDRESS": "127.0.0.1",
        "ASTERISK_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
        "ASTERISK_RTP_PORTS": free_udp_range(100),
        "CALLKEEPER_API_PORT": str(free_port(socket.SOCK_STREAM)),
    }
    compose = [
        "podman-compose",
        "--project-name",
        project,
        "--file",
        str(project_copy(tmp_path_factory.mktemp("compose"))),
    ]
    running = Stack(
        project=project, env=env, api_url=f"http://127.0.0.1:{env['CALLKEEPER_API_PORT']}", token=token
    )
    try:
        run(*compose, "up", "--detach", "--no-build", env=env, timeout=300)
        yield running
    finally:
        run(*compose, "down", "--volumes", "--timeout", "50", env=env, timeout=300, check=False)
        # podman-compose 1.0.3 leaves the network, and a failed `up` may leave containers.
        label = f"label=io.podman.compose.project={project}"
        leftover = run(
            "podman", "ps", "--all", "--quiet", "--filter", label, env=env, check=False
        ).stdout.split()
        if leftover:
            run("podman", "rm", "--force", "--volumes", *leftover, env=env, check=False)
        run("podman", "network", "rm", "--force", f"{project}_pbx", env=env, check=False)
        shutil.rmtree(CNI_IPAM / f"{project}_pbx", ignore_errors=True)  # what CNI's host-local leaves


def test_a_call_through_the_containers_gets_its_verdict(stack: Stack) -> None:
    wait_for(
        "callkeeper in its container was not ready (ARI of the Asterisk container, its store)",
        lambda: (
            api(stack, "/readyz")
            == (
                200,
                {
                    "status": "ready",
                    "checks": {"ari": True, "config": True, "store": True},
                    "detail": {"missing_sounds": {}},  # the prompts the example plays ship with the image
                },
            )
        ),
        90,
        stack,
    )

    # The caller stays 3 s after callkeeper answers; alice and bob are not registered, so the call goes
    # to voicemail as the line's missed-call handling says.
    run(
        "podman", "exec", stack.container("asterisk"), "asterisk", "-rx",
        f"channel originate Local/{DIALLED}@callkeeper-inbound application Wait 3",
        env=stack.env,
    )  # fmt: skip

    def ended_call() -> dict[str, Any] | None:
        status, body = api(stack, "/api/v1/calls")
        if status != 200:
            return None
        ended = [call for call in body["calls"] if call["ended_at"] is not None]
        return ended[0] if ended else None

    call = wait_for("the call was not recorded as ended", ended_call, 60, stack)
    assert (call["direction"], call["line"], call["dialed"]) == ("inbound", "main", DIALLED)
    assert (call["outcome"], call["reason"]) == ("missed", "no_agents_available")
    assert call["voicemail"]["mailbox"] == "1000@default"
    assert call["end_observed"] is True
    assert [step["stage"] for step in call["steps"]][-1] == "caller_hangup"


def test_both_containers_are_healthy_and_unprivileged(stack: Stack) -> None:
    for service, user in (("callkeeper", "callkeeper"), ("asterisk", "asterisk")):
        name = stack.container(service)
        run("podman", "healthcheck", "run", name, env=stack.env)
        assert run("podman", "exec", name, "id", "-un", env=stack.env).stdout.strip() == user
        assert run("podman", "exec", name, "id", "-u", env=stack.env).stdout.strip() != "0"


def test_sip_answers_on_the_published_port(stack: Stack) -> None:
    """What phones and trunks reach: the container's PJSIP transport through the port compose publishes."""
    port = int(stack.env["ASTERISK_SIP_PORT"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1)
        local = sock.getsockname()[1]
        options = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1:{local}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {secrets.token_hex(12)}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

        def answer() -> bytes | None:
            sock.sendto(options, ("127.0.0.1", port))
            try:
                return sock.recv(4096)
            except TimeoutError:
                return None

        response = wait_for("Asterisk did not answer SIP OPTIONS on the published port", answer, 30, stack)
    assert response.startswith(b"SIP/2.0 ")
