"""SIP on the wire against the sandbox Asterisk: SIPp plays the trunk's callers and the users' phones.

The trunk's callers are one SIPp client (`scenarios/caller.xml`) sending from 127.0.0.2, which
Asterisk identifies as the trunk `test-trunk` (calls enter callkeeper), or from 127.0.0.3, the trunk
`test-native-trunk` (calls go to Asterisk's own `Dial()` of the call's X-Dial header). Each phone
(`phone1`..`phone8` of tests/asterisk/pjsip_test.conf) is one SIPp server (`scenarios/phone.xml`) on
a free loopback port, registered as that endpoint's contact. Every SIPp traces its messages, so tests
read back what went over the wire, with SIPp's timestamps; RTP of both sides is played by sockets of
the harness (`RtpPeer`), so tests compare the audio each side sent with what the other received.

SIPp that cannot start fails the test (never a skip).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TRUNK_HOST = "127.0.0.2"
"""Calls from this address are the trunk `test-trunk`: they enter [from-trunk], then callkeeper."""
NATIVE_TRUNK_HOST = "127.0.0.3"
"""Calls from this address are the trunk `test-native-trunk`: Dial() of the call's X-Dial header."""
PHONE_HOST = "127.0.0.1"
FOREVER_MS = 3_600_000
"""A ring or talk time that never runs out within a test: the other side ends the call."""
SIPP_START_SECONDS = 5.0

_TRACE_SEPARATOR = re.compile(r"^-{47} ?(\S+ \S+)?$", re.MULTILINE)
_NAME_ADDR = re.compile(r'^\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^<"]*?))\s*<(?P<uri>[^>]*)>')


class SipError(AssertionError):
    """SIPp could not start, or a SIP exchange the harness needs (a registration) failed."""


# ------------------------------------------------------------------ messages


@dataclass(frozen=True, slots=True)
class SipMessage:
    """One SIP message as a SIPp instance sent or received it, at SIPp's clock (epoch seconds)."""

    at: float
    sent: bool
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: str

    @property
    def method(self) -> str | None:
        """The method of a request; None for a response."""
        return None if self.start_line.startswith("SIP/2.0") else self.start_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        """The status code of a response; None for a request."""
        return int(self.start_line.split()[1]) if self.start_line.startswith("SIP/2.0") else None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def call_id(self) -> str:
        return self.header("Call-ID") or ""

    @property
    def cseq_method(self) -> str:
        return (self.header("CSeq") or " ").split()[-1]

    def identity(self, header: str = "From") -> tuple[str, str]:
        """(display name, user part) of a name-addr header such as From or P-Asserted-Identity;
        ("", "") when the header is missing."""
        value = self.header(header)
        if value is None:
            return "", ""
        return parse_name_addr(value)


def parse_name_addr(value: str) -> tuple[str, str]:
    """`"Carl" <sip:+1415@host>;tag=x` -> ("Carl", "+1415"); a bare URI has no display name."""
    found = _NAME_ADDR.match(value)
    if found is None:
        uri, display = value.split(";", 1)[0].strip(), ""
    else:
        uri = found["uri"]
        display = (
            (found["quoted"] or "").replace('\\"', '"')
            if found["quoted"] is not None
            else (found["token"] or "").strip()
        )
    user = uri.split(":", 1)[-1].split("@", 1)[0] if "@" in uri else ""
    return display, user


def read_trace(path: Path) -> list[SipMessage]:
    """The messages of a SIPp `-trace_msg` file, in order (blocks without a timestamp, SIPp's
    "Unexpected message" echoes of a message already traced, are left out)."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    messages: list[SipMessage] = []
    marks = list(_TRACE_SEPARATOR.finditer(text))
    for index, mark in enumerate(marks):
        if mark[1] is None:
            continue
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        block = text[mark.end() : end].lstrip("\n")
        kind, _, raw = block.partition("\n")
        if "message sent" not in kind and "message received" not in kind:
            continue
        message = _parse_message(raw.strip("\r\n"), _trace_time(mark[1]), "sent" in kind)
        if message is not None:
            messages.append(message)
    return messages


def _trace_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def _parse_message(raw: str, at: float, sent: bool) -> SipMessage | None:
    head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    if not lines or not lines[0].strip():
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip(), value.strip()))
    return SipMessage(at, sent, lines[0].strip(), tuple(headers), body)


def dialogs(messages: Iterable[SipMessage]) -> dict[str, list[SipMessage]]:
    """Messages grouped by Call-ID, each group in order."""
    grouped: dict[str, list[SipMessage]] = {}
    for message in messages:
        grouped.setdefault(message.call_id, []).append(message)
    return grouped


def sdp_address(message: SipMessage) -> tuple[str, int]:
    """Where the SDP of a message wants its audio: (c= address, m=audio port)."""
    host = re.search(r"^c=IN IP4 (\S+)", message.body, re.MULTILINE)
    port = re.search(r"^m=audio (\d+)", message.body, re.MULTILINE)
    if host is None or port is None:
        raise AssertionError(f"no audio in the SDP of {message.start_line!r}:\n{message.body}")
    return host[1], int(port[1])


# ------------------------------------------------------------------ RTP


class RtpPeer(asyncio.DatagramProtocol):
    """The audio of one SIP party: a UDP socket that records the payload of every RTP packet it
    receives and sends packets of given payloads (PCMU, 20 ms each)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, host: str) -> RtpPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=(host, 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) > 12 and data[0] >> 6 == 2:
            self.received.append(data[12:])

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    async def send(self, to: tuple[str, int], payloads: Sequence[bytes]) -> None:
        assert self.transport is not None
        ssrc = uuid.uuid4().int & 0xFFFFFFFF
        for sequence, payload in enumerate(payloads):
            header = struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, sequence * 160, ssrc)
            self.transport.sendto(header + payload, to)
            await asyncio.sleep(0.02)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def tone(seed: int, frames: int) -> list[bytes]:
    """`frames` distinct 20 ms PCMU payloads, each recognisable by its first bytes: no frame of
    another seed is equal to any of them."""
    return [bytes([seed & 0xFF, (index >> 8) & 0xFF, index & 0xFF]) * 53 + b"\x7f" for index in range(frames)]


# ------------------------------------------------------------------ SIPp processes


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _udp_bound(host: str, port: int) -> bool:
    """Whether some process listens on host:port/udp (read from /proc: probing by binding would
    race the process that is about to bind it)."""
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    for table in ("/proc/net/udp",):
        with Path(table).open() as rows:
            if any(row.split()[1] == wanted for row in list(rows)[1:]):
                return True
    return False


@dataclass
class Sipp:
    """One SIPp process: its scenario, its message trace and its screen output."""

    name: str
    host: str
    port: int
    workdir: Path
    process: asyncio.subprocess.Process

    @property
    def trace(self) -> Path:
        return self.workdir / f"{self.name}.messages.log"

    @property
    def errors(self) -> str:
        path = self.workdir / f"{self.name}.errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def screen(self) -> str:
        path = self.workdir / f"{self.name}.screen.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def messages(self) -> list[SipMessage]:
        return read_trace(self.trace)

    def dialogs(self) -> dict[str, list[SipMessage]]:
        return dialogs(self.messages())

    def describe(self) -> str:
        return f"SIPp {self.name} on {self.host}:{self.port}\n{self.screen[-3000:]}\n{self.errors[-3000:]}"

    async def wait(self, within: float) -> int:
        """Waits for SIPp to end (a client ends after its calls); its exit status (0: every call
        went as the scenario says)."""
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"SIPp {self.name} still runs after {within} s:\n{self.describe()}"
            ) from None

    async def stop(self) -> int:
        """Ends SIPp: SIGUSR1 lets a server finish its calls' last messages, then it exits."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGUSR1)
            try:
                return await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
        return await self.process.wait()


def render_scenario(scenario: str, workdir: Path, name: str, values: Mapping[str, object]) -> Path:
    """`scenarios/<scenario>.xml` with its {placeholders} filled in, written into `workdir`."""
    text = (SCENARIOS / f"{scenario}.xml").read_text()
    rendered = re.sub(r"\{(\w+)\}", lambda found: str(values[found[1]]), text)
    path = workdir / f"{name}.xml"
    path.write_text(rendered)
    return path


async def start_sipp(
    name: str,
    scenario: Path,
    host: str,
    workdir: Path,
    *,
    arguments: Sequence[str] = (),
    target: str | None = None,
) -> Sipp:
    """Starts SIPp on a free port of `host` and waits until it listens; fails if it cannot."""
    binary = shutil.which("sipp")
    if binary is None:
        raise SipError("sipp is not installed (Debian package sip-tester; .ci/run installs it)")
    port = free_udp_port(host)
    command = [
        binary,
        "-sf", str(scenario),
        "-i", host,
        "-p", str(port),
        "-t", "u1",
        "-nostdin",
        "-aa",  # 200 OK to in-dialog UPDATE, INFO, NOTIFY and OPTIONS (connected line updates)
        "-timeout", "900s",  # never outlives a crashed test run for long
        "-trace_msg", "-message_file", str(workdir / f"{name}.messages.log"),
        "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
        *arguments,
    ]  # fmt: skip
    if target is not None:
        command.append(target)
    with (workdir / f"{name}.screen.log").open("wb") as screen:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT
        )
    sipp = Sipp(name, host, port, workdir, process)
    deadline = time.monotonic() + SIPP_START_SECONDS
    while not _udp_bound(host, port):
        if process.returncode is not None:
            raise SipError(f"SIPp {name} could not start (exit {process.returncode}):\n{sipp.describe()}")
        if time.monotonic() > deadline:
            process.kill()
            await process.wait()
            raise SipError(f"SIPp {name} did not listen within {SIPP_START_SECONDS} s:\n{sipp.describe()}")
        await asyncio.sleep(0.02)
    return sipp


# ------------------------------------------------------------------ phones


@dataclass
class Phone:
    """A user's phone: endpoint `PJSIP/<endpoint>` of the sandbox, played by one SIPp server."""

    endpoint: str
    sipp: Sipp
    rtp: RtpPeer

    @property
    def dial_string(self) -> str:
        return f"PJSIP/{self.endpoint}"

    def messages(self) -> list[SipMessage]:
        return self.sipp.messages()

    def received(self, method: str) -> list[SipMessage]:
        """Requests of `method` the phone received (INVITE, CANCEL, BYE, ...)."""
        return [m for m in self.messages() if not m.sent and m.method == method]

    def invites(self) -> list[SipMessage]:
        """The INVITEs of new calls (not the re-INVITEs of calls in progress)."""
        return [m for m in self.received("INVITE") if "tag=" not in (m.header("To") or "")]


async def register(asterisk: tuple[str, int], endpoint: str, contact: tuple[str, int], expires: int) -> None:
    """Registers `contact` as the one contact of `endpoint`'s AOR (Expires 0: removes it)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Registrar(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            if data.startswith(b"SIP/2.0 1"):
                return
            if not answer.done():
                answer.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Registrar, local_addr=(contact[0], 0))
    try:
        local_port = transport.get_extra_info("sockname")[1]
        tag = uuid.uuid4().hex[:10]
        request = (
            f"REGISTER sip:{asterisk[0]}:{asterisk[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {contact[0]}:{local_port};rport;branch=z9hG4bK{uuid.uuid4().hex[:16]}\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{endpoint}@{asterisk[0]}>;tag={tag}\r\n"
            f"To: <sip:{endpoint}@{asterisk[0]}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{contact[0]}\r\n"
            f"CSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{endpoint}@{contact[0]}:{contact[1]}>\r\n"
            f"Expires: {expires}\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        transport.sendto(request.encode(), asterisk)
        try:
            reply = await asyncio.wait_for(answer, 5)
        except TimeoutError:
            raise SipError(f"no answer from Asterisk {asterisk} to the REGISTER of {endpoint}") from None
        status_line = reply.split(b"\r\n", 1)[0].decode(errors="replace")
        if not status_line.startswith("SIP/2.0 200"):
            raise SipError(f"REGISTER of {endpoint} refused: {status_line}")
    finally:
        transport.close()


@asynccontextmanager
async def phone(
    asterisk: tuple[str, int],
    endpoint: str,
    workdir: Path,
    *,
    ring_ms: int = FOREVER_MS,
    talk_ms: int = FOREVER_MS,
) -> AsyncIterator[Phone]:
    """A registered phone that rings `ring_ms`, answers, and hangs up after `talk_ms` of talk
    (FOREVER_MS: never answers / waits for the far end to hang up). Unregistered at the end."""
    rtp = await RtpPeer.open(PHONE_HOST)
    try:
        scenario = render_scenario(
            "phone", workdir, endpoint, {"ring_ms": ring_ms, "talk_ms": talk_ms, "rtp_port": rtp.port}
        )
        sipp = await start_sipp(endpoint, scenario, PHONE_HOST, workdir)
        try:
            await register(asterisk, endpoint, (PHONE_HOST, sipp.port), expires=3600)
            try:
                yield Phone(endpoint, sipp, rtp)
            finally:
                await register(asterisk, endpoint, (PHONE_HOST, sipp.port), expires=0)
        finally:
            await sipp.stop()
    finally:
        rtp.close()


@asynccontextmanager
async def phones(
    asterisk: tuple[str, int], workdir: Path, ring_ms: Mapping[str, int], talk_ms: int = FOREVER_MS
) -> AsyncIterator[dict[str, Phone]]:
    """Several phones at once: endpoint -> its ring time (see `phone`)."""
    async with AsyncExitStack() as stack:
        yield {
            endpoint: await stack.enter_async_context(
                phone(asterisk, endpoint, workdir, ring_ms=ring, talk_ms=talk_ms)
            )
            for endpoint, ring in ring_ms.items()
        }


# ------------------------------------------------------------------ callers


@dataclass(frozen=True, slots=True)
class Caller:
    """One call of the trunk: who calls which number (and, for the native trunk, what Dial() rings)."""

    dialled: str
    number: str
    name: str = "Carl Caller"
    dial: str = "none"


@dataclass
class Callers:
    """The trunk's callers of one SIPp client, in the order they called."""

    callers: tuple[Caller, ...]
    sipp: Sipp
    rtp: RtpPeer

    async def wait(self, within: float) -> int:
        return await self.sipp.wait(within)

    def messages(self) -> list[SipMessage]:
        return self.sipp.messages()

    def dialogs(self) -> dict[str, list[SipMessage]]:
        """Each caller's messages, keyed by the caller's number (callers of one run have distinct
        numbers)."""
        by_number: dict[str, list[SipMessage]] = {}
        for messages in self.sipp.dialogs().values():
            invite = next((m for m in messages if m.sent and m.method == "INVITE"), None)
            if invite is not None:
                by_number[invite.identity()[1]] = messages
        return by_number


@asynccontextmanager
async def callers(
    asterisk: tuple[str, int],
    calls: Sequence[Caller],
    workdir: Path,
    *,
    name: str = "callers",
    trunk_host: str = TRUNK_HOST,
    rate: float = 1.0,
    give_up_ms: int = FOREVER_MS,
    talk_ms: int = FOREVER_MS,
) -> AsyncIterator[Callers]:
    """Places `calls` through the trunk at `rate` per second: each caller lets it ring `give_up_ms`
    after the last provisional response, then cancels; answered, talks `talk_ms` and hangs up
    (FOREVER_MS: until the far end hangs up). The SIPp client is stopped at the end if still running."""
    numbers = [call.number for call in calls]
    if len(set(numbers)) != len(numbers):
        raise ValueError("the callers of one run need distinct numbers")
    rtp = await RtpPeer.open(trunk_host)
    try:
        scenario = render_scenario(
            "caller", workdir, name, {"give_up_ms": give_up_ms, "talk_ms": talk_ms, "rtp_port": rtp.port}
        )
        injection = workdir / f"{name}.csv"
        injection.write_text(
            "SEQUENTIAL\n" + "".join(f"{c.dialled};{c.number};{c.name};{c.dial};\n" for c in calls)
        )
        limit = max(1, len(calls))
        arguments = ["-inf", str(injection), "-m", str(len(calls)), "-l", str(limit)]
        arguments += ["-r", "1", "-rp", str(round(1000 / rate))]  # one call every 1/rate s
        target = f"{asterisk[0]}:{asterisk[1]}"
        sipp = await start_sipp(name, scenario, trunk_host, workdir, arguments=arguments, target=target)
        try:
            yield Callers(tuple(calls), sipp, rtp)
        finally:
            await sipp.stop()
    finally:
        rtp.close()
