"""Hear a tune: ABC -> MIDI -> a 16 kHz mono waveform -> ``IPython.display.Audio``.

Pure Python, no system packages, no root: :mod:`utils.abc` reads the tune and
``pretty_midi`` (a maintained MIDI library on top of ``mido``) writes the MIDI file and
synthesises it with a soft additive tone, the same sound in Jupyter, Colab and CI.
Nothing is run through a shell; the tune text never reaches a command line.

16 kHz mono keeps the stored notebooks small (about 43 kB of notebook per second of
audio), and the clip is cut to ``max_seconds``.

Introduced in ``notebooks/04_music_lstm.ipynb``.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from utils import abc

#: Sample rate of every waveform made here.
SAMPLE_RATE = 16_000
#: General MIDI program used for the melody (73 = flute; 0-based 72 in pretty_midi).
PROGRAM = 73
#: Silence kept after the last note, in seconds.
TAIL_SECONDS = 0.5


def to_midi(text: str) -> Any:
    """The tune as a ``pretty_midi.PrettyMIDI`` (tempo from ``Q:`` or 140 crotchets a
    minute). Raises :class:`utils.abc.AbcError` when the text is not a readable tune."""
    return _midi(abc.parse(text))


def _midi(tune: abc.Tune) -> Any:
    import pretty_midi

    if not tune.notes:
        raise abc.AbcError("the tune has no notes to play")
    seconds_per_whole = 4 * 60.0 / tune.tempo_qpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=tune.tempo_qpm)
    melody = pretty_midi.Instrument(program=PROGRAM - 1, name=tune.title[:40])
    for note in tune.notes:
        start = float(note.start) * seconds_per_whole
        end = start + max(float(note.duration) * seconds_per_whole * 0.95, 0.02)
        melody.notes.append(pretty_midi.Note(velocity=90, pitch=note.pitch, start=start, end=end))
    midi.instruments.append(melody)
    return midi


def write_midi(text: str, path: str | Path) -> Path:
    """Write the tune as a standard MIDI file; return its path."""
    path = Path(path)
    to_midi(text).write(str(path))
    return path


def _tone(phase: np.ndarray) -> np.ndarray:
    """A soft, whistle-like tone: the fundamental and two quiet overtones."""
    return np.sin(phase) + 0.25 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)


def synthesize(text: str, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """The tune as a mono ``float32`` waveform in ``[-1, 1]`` at ``sample_rate``.

    >>> wav = synthesize("X:1\\nT:t\\nM:4/4\\nL:1/4\\nQ:1/4=120\\nK:C\\nCDEF|")
    >>> round(len(wav) / SAMPLE_RATE, 2)   # four crotchets at 120 a minute, plus the tail
    2.5
    """
    tune = abc.parse(text)
    audio = _midi(tune).synthesize(fs=sample_rate, wave=_tone)
    end = tune.seconds + TAIL_SECONDS
    if max_seconds is not None:
        end = min(end, max_seconds)
    audio = audio[: int(round(end * sample_rate))]
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio / peak * 0.9 if peak > 0 else audio).astype(np.float32)


def write_wav(waveform: np.ndarray, path: str | Path, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono waveform in ``[-1, 1]`` as a 16-bit PCM WAV file."""
    path = Path(path)
    pcm = (np.clip(np.asarray(waveform, dtype=np.float64), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV file as ``(float32 waveform in [-1, 1], sample rate)``."""
    with wave.open(str(path), "rb") as src:
        if src.getsampwidth() != 2 or src.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono PCM")
        frames = src.readframes(src.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32767, src.getframerate()


def play(text: str, max_seconds: float = 12.0) -> Any:
    """An ``IPython.display.Audio`` player for the tune (its first ``max_seconds``).

    A text that is not a playable tune raises :class:`utils.abc.AbcError` saying why;
    check generated text with :func:`utils.abc.check_tune` first.
    """
    from IPython.display import Audio

    return Audio(synthesize(text, max_seconds=max_seconds), rate=SAMPLE_RATE)


def present(tunes: list[str], experiment: Any = None, max_seconds: float = 8.0, name: str = "generated_tune") -> Any:
    """Show one generated tune: print the longest playable one among the first ten, log
    its text and sound to ``experiment`` (if any), and return a player for it.

    Returns ``None`` -- after printing why -- when none of them is a playable tune
    (:func:`utils.abc.check_tune`). The WAV file logged to the experiment is written to
    a fresh temporary folder, so two runs at once never share a file.

    Introduced in ``notebooks/04_music_lstm.ipynb``; also used in ``notebooks/08_transformers.ipynb``.
    """
    import tempfile

    from IPython.display import Audio

    playable = [tune for tune in tunes[:10] if abc.check_tune(tune).valid]
    if not playable:
        print(f"None of the first {min(len(tunes), 10)} tunes is playable yet: train longer (full mode) and generate again.")
        return None
    chosen = max(playable, key=len)
    print(chosen)
    waveform = synthesize(chosen, max_seconds=max_seconds)
    if experiment is not None:
        experiment.log_text(chosen, metadata={"name": name})
        with tempfile.TemporaryDirectory(prefix="tune-") as folder:
            wav = write_wav(waveform, Path(folder) / f"{name}.wav")
            experiment.log_audio(str(wav), file_name=wav.name)
    return Audio(waveform, rate=SAMPLE_RATE)
