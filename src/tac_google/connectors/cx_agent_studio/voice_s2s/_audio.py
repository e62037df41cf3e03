"""Call audio (G.711 μ-law, 8 kHz) to and from CES's LINEAR16 (16-bit little-endian PCM):
the caller's audio up to 16 kHz, the agent's down from 48 kHz. Pure Python (``audioop`` is
gone from Python 3.13); a 20 ms frame costs well under a millisecond."""

from __future__ import annotations

import sys
from array import array

__all__ = ["Downsampler", "Upsampler", "mulaw_decode", "mulaw_encode"]

_BIAS = 0x84
_CLIP = 32635


def _decode_byte(byte: int) -> int:
    byte = ~byte & 0xFF
    magnitude = ((((byte & 0x0F) << 3) + _BIAS) << ((byte >> 4) & 0x07)) - _BIAS
    return -magnitude if byte & 0x80 else magnitude


def _encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sign else sample, _CLIP) + _BIAS
    exponent = 7
    while exponent and not magnitude & (0x4000 >> (7 - exponent)):
        exponent -= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


_DECODE = [_decode_byte(b) for b in range(256)]
_ENCODE: bytes | None = None  # by 16-bit sample, built at first use (64 KiB)


def mulaw_decode(data: bytes) -> array[int]:
    """μ-law bytes as 16-bit samples."""
    table = _DECODE
    return array("h", [table[b] for b in data])


def mulaw_encode(samples: array[int] | list[int]) -> bytes:
    """16-bit samples as μ-law bytes."""
    global _ENCODE
    if _ENCODE is None:
        _ENCODE = bytes(_encode_sample(s - 65536 if s > 32767 else s) for s in range(65536))
    table = _ENCODE
    return bytes(table[s & 0xFFFF] for s in samples)


def _pcm_bytes(samples: array[int]) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover - LINEAR16 is little-endian
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _pcm_samples(data: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":  # pragma: no cover
        samples.byteswap()
    return samples


class Upsampler:
    """μ-law 8 kHz to LINEAR16 16 kHz (linear interpolation, continuous across frames)."""

    def __init__(self) -> None:
        self._last = 0

    def convert(self, mulaw: bytes) -> bytes:
        out = array("h", bytes(4 * len(mulaw)))
        last = self._last
        index = 0
        for sample in mulaw_decode(mulaw):
            out[index] = (last + sample) >> 1
            out[index + 1] = sample
            index += 2
            last = sample
        self._last = last
        return _pcm_bytes(out)


class Downsampler:
    """LINEAR16 at ``rate`` (a multiple of 8 kHz) to μ-law 8 kHz: each output sample is the
    mean of ``rate / 8000`` input samples (a box filter against aliasing); a chunk's leftover
    samples wait for the next one."""

    def __init__(self, rate: int) -> None:
        if rate % 8000:
            raise ValueError(f"the rate must be a multiple of 8000 Hz, got {rate}")
        self.factor = rate // 8000
        self._rest = array("h")

    def convert(self, pcm: bytes) -> bytes:
        samples = self._rest + _pcm_samples(pcm)
        factor = self.factor
        usable = len(samples) - len(samples) % factor
        self._rest = samples[usable:]
        means = [sum(samples[i : i + factor]) // factor for i in range(0, usable, factor)]
        return mulaw_encode(means)
