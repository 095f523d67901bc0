"""PostgreSQL log sequence numbers as ints (for arithmetic) and their 'X/Y' text form."""

from __future__ import annotations


def parse_lsn(text: str | None) -> int | None:
    if not text:
        return None
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def format_lsn(value: int | None) -> str | None:
    if value is None:
        return None
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
