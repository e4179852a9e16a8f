"""A tablet counter client written from icd/tablet-counter-serial.md alone.

Raw pyserial bytes, blocking, as a vendor's test bench would write it. It
deliberately imports nothing from drivers/ or simulators/: when it and our
driver both work against the simulator, the two did not share a misreading
of the ICD.
"""

from __future__ import annotations

import serial


class IcdError(Exception):
    """The device answered ER CODE [TEXT]."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code} {text}".strip())
        self.code = code


def checksum(body: bytes) -> str:
    """XOR of every byte between the start character and '*', as two uppercase hex digits."""
    value = 0
    for byte in body:
        value ^= byte
    return f"{value:02X}"


def frame(start: str, body: str) -> bytes:
    """One frame: start, body, '*', checksum, CR LF."""
    return f"{start}{body}*{checksum(body.encode('ascii'))}\r\n".encode("ascii")


class IcdCounterClient:
    """One request at a time; replies matched by SEQ; events kept aside."""

    def __init__(self, url: str, baud: int = 115200) -> None:
        # A pty path or socket://host:port; 8N1, no flow control.
        self.port = serial.serial_for_url(url, baudrate=baud, bytesize=8, parity="N",
                                          stopbits=1, timeout=0.1)
        self.seq = 0x40
        self.events: list[list[str]] = []

    def close(self) -> None:
        self.port.close()

    def _read_frame(self) -> bytes | None:
        line = self.port.read_until(b"\r\n", 130)
        return line if line.endswith(b"\r\n") else None

    def request(self, verb: str, *args: str) -> list[str]:
        """Send VERB ARGS; the reply's arguments, or IcdError for ER."""
        self.seq = (self.seq + 1) % 256
        seq = f"{self.seq:02X}"
        raw = frame(">", " ".join([seq, verb, *args]))
        for _attempt in range(4):  # the first try and 3 retries, same frame and SEQ
            self.port.write(raw)
            for _ in range(20):
                line = self._read_frame()
                if line is None:
                    break
                text = line[:-2].decode("ascii")
                body, _, cs = text[1:].rpartition("*")
                if cs != checksum(body.encode("ascii")):
                    continue
                words = body.split(" ")
                if text[0] == "!":
                    self.events.append(words)
                    continue
                if text[0] == "<" and words[0] == seq:
                    if words[1] == "OK":
                        return words[2:]
                    raise IcdError(words[2], " ".join(words[3:]))
        raise TimeoutError(f"no reply to {raw!r}")

    def wait_event(self, name: str, timeout_s: float = 10.0) -> list[str]:
        """Read until an event NAME arrives (or one already read); its arguments."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index, event in enumerate(self.events):
                if event[0] == name:
                    return self.events.pop(index)[1:]
            line = self._read_frame()
            if line is not None and line.startswith(b"!"):
                body = line[1:-2].decode("ascii").rpartition("*")[0]
                self.events.append(body.split(" "))
        raise TimeoutError(f"no {name} event")
