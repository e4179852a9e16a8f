"""The tablet counter codec, pinned to the ICD's own example frames."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.tablet_counter import protocol as wire

ARG = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
              min_size=1, max_size=8)


def test_icd_example_request_encodes_byte_for_byte() -> None:
    frame = wire.encode(wire.Request(0x07, "CT", ("RX1001", "3", "30")))
    assert frame == b">07 CT RX1001 3 30*2A\r\n"


def test_icd_example_reply_encodes_byte_for_byte() -> None:
    assert wire.encode(wire.Reply(0x07, True)) == b"<07 OK*23\r\n"


def test_icd_example_event_encodes_byte_for_byte() -> None:
    assert wire.encode(wire.Event("PG", ("RX1001", "25"))) == b"!PG RX1001 25*1A\r\n"


@pytest.mark.parametrize(
    ("data", "frame"),
    [
        (b">07 CT RX1001 3 30*2A\r\n", wire.Request(7, "CT", ("RX1001", "3", "30"))),
        (b"<07 OK*23\r\n", wire.Reply(7, True, ())),
        (b"!PG RX1001 25*1A\r\n", wire.Event("PG", ("RX1001", "25"))),
    ],
)
def test_icd_examples_decode(data: bytes, frame: wire.Frame) -> None:
    assert wire.decode(data) == frame


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b">07 CT RX1001 3 30*2B\r\n", "checksum"),
        (b">07 CT RX1001 3 30*2a\r\n", "uppercase hex"),
        (b"07 CT RX1001 3 30*2A\r\n", "start"),
        (b">7 CT*00\r\n", "SEQ"),
        (b">07  CT*%02X\r\n" % wire.checksum(b"07  CT"), "token"),
        (b"<07 MAYBE*%02X\r\n" % wire.checksum(b"07 MAYBE"), "OK nor ER"),
        (b">07 CT RX1001 3 30\r\n", "end in"),
        (b">07 CT \xff*00\r\n", "ASCII"),
        (b">07 " + b"A" * 130 + b"*00\r\n", "limit"),
    ],
)
def test_malformed_frames_are_refused_with_reason(data: bytes, why: str) -> None:
    with pytest.raises(wire.FrameError, match=why):
        wire.decode(data)


def test_encode_refuses_an_argument_with_a_space() -> None:
    with pytest.raises(wire.FrameError, match="argument"):
        wire.encode(wire.Request(1, "CT", ("RX 1", "3", "30")))


def test_encode_refuses_a_frame_over_128_bytes() -> None:
    with pytest.raises(wire.FrameError, match="128"):
        wire.encode(wire.Request(1, "ID", ("A" * 32,) * 4))


@given(st.integers(0, 255), st.sampled_from(sorted(wire.VERB_ARITY)), st.lists(ARG, max_size=3))
def test_request_round_trips(seq: int, verb: str, args: list[str]) -> None:
    request = wire.Request(seq, verb, tuple(args))
    assert wire.decode(wire.encode(request)) == request


@given(st.integers(0, 255), st.booleans(), st.lists(ARG, max_size=5))
def test_reply_round_trips(seq: int, ok: bool, args: list[str]) -> None:
    reply = wire.Reply(seq, ok, tuple(args))
    assert wire.decode(wire.encode(reply)) == reply


@given(st.sampled_from(["PG", "EN", "DR", "PW"]), st.lists(ARG, max_size=4))
def test_event_round_trips(name: str, args: list[str]) -> None:
    event = wire.Event(name, tuple(args))
    assert wire.decode(wire.encode(event)) == event


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_frame_error(data: bytes) -> None:
    with contextlib.suppress(wire.FrameError):  # any other exception fails the test
        wire.decode(data)


@given(st.lists(st.binary(max_size=40), max_size=10))
def test_splitter_never_returns_an_overlong_line(chunks: list[bytes]) -> None:
    splitter = wire.FrameSplitter()
    for chunk in chunks:
        for line in splitter.feed(chunk):
            assert line.endswith(b"\r\n")
            assert len(line) <= wire.MAX_FRAME


def test_splitter_drops_an_overlong_line_and_keeps_the_next() -> None:
    splitter = wire.FrameSplitter()
    good = b"<07 OK*23\r\n"
    assert splitter.feed(b"X" * 300) == []
    assert splitter.feed(b"\r\n" + good[:4]) == []
    assert splitter.feed(good[4:]) == [good]


def test_wire_time_is_ten_bits_a_byte() -> None:
    assert wire.wire_time(96, 9600) == pytest.approx(0.1)
