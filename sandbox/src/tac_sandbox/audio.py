"""Phone audio: μ-law 8 kHz (G.711) from WAV files and speech, as Twilio's Media Streams carry it.

No codec library: the standard ``wave`` module reads the WAV, a linear interpolation resamples
it to 8 kHz and G.711's μ-law table encodes it. :func:`speech_wav` asks Debian's ``espeak-ng``
to say a sentence.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from functools import cache
from pathlib import Path

FRAME_BYTES = 160
"""20 ms of μ-law at 8 kHz: the size of one Media Streams ``media`` frame."""
SILENCE = 0xFF
_BIAS = 0x84
_CLIP = 32635


class AudioUnavailable(RuntimeError):
    """Speech cannot be made here (``espeak-ng`` is not installed)."""


def _encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _decode_byte(byte: int) -> int:
    value = ~byte & 0xFF
    exponent = (value >> 4) & 0x07
    magnitude = (((value & 0x0F) << 3) + _BIAS << exponent) - _BIAS
    return -magnitude if value & 0x80 else magnitude


@cache
def _encode_table() -> list[int]:
    return [_encode_sample(s - 32768) for s in range(0, 65536, 4)]  # every 4th 16-bit value


DECODE = [_decode_byte(b) for b in range(256)]
"""The linear 16-bit sample of each μ-law byte."""


def encode_mulaw(samples: list[int]) -> bytes:
    """16-bit linear samples as μ-law bytes."""
    table = _encode_table()
    return bytes(table[(max(-32768, min(32767, s)) + 32768) >> 2] for s in samples)


def mulaw_energy(chunk: bytes) -> float:
    """Mean absolute amplitude of μ-law audio (0 for silence)."""
    if not chunk:
        return 0.0
    return sum(abs(DECODE[b]) for b in chunk) / len(chunk)


def silence(ms: int) -> bytes:
    """``ms`` of μ-law silence."""
    return bytes([SILENCE]) * (ms * 8)


def wav_to_mulaw(path: str | Path) -> bytes:
    """A PCM WAV file (8/16-bit, any rate, mono or stereo) as μ-law 8 kHz mono."""
    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        rate = wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 2:
        values = [
            int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)
        ]
    elif width == 1:
        values = [(b - 128) << 8 for b in raw]
    else:
        raise ValueError(f"{path}: only 8- and 16-bit PCM WAV files are supported")
    if channels > 1:
        values = [
            sum(values[i : i + channels]) // channels for i in range(0, len(values), channels)
        ]
    if rate != 8000 and values:
        step = rate / 8000
        count = int(len(values) / step)
        resampled = []
        for n in range(count):
            position = n * step
            index = int(position)
            fraction = position - index
            following = values[index + 1] if index + 1 < len(values) else values[index]
            resampled.append(int(values[index] + (following - values[index]) * fraction))
        values = resampled
    return encode_mulaw(values)


def speech_wav(text: str, path: str | Path, *, voice: str = "en-us") -> Path:
    """Say ``text`` into a WAV file with ``espeak-ng``; raises :class:`AudioUnavailable`."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise AudioUnavailable(
            "espeak-ng is not installed (Debian: apt-get install espeak-ng; "
            "scripts/ensure-services.sh installs it)"
        )
    target = Path(path)
    subprocess.run(
        [program, "-v", voice, "-w", str(target), text],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return target
