"""Hear a tune: ABC -> MIDI -> a 16 kHz mono waveform -> ``IPython.display.Audio``.

Pure Python, no system packages, no root: :mod:`utils.abc` reads the tune,
``pretty_midi`` (a maintained MIDI library on top of ``mido``) writes the MIDI file, and
:func:`synthesize` renders a soft additive tone -- sample for sample the sound of
``pretty_midi``'s own synthesiser, but rendering only the clip asked for -- the same
sound in Jupyter, Colab and CI. Nothing is run through a shell; the tune text never
reaches a command line.

16 kHz mono keeps the stored notebooks small (about 43 kB of notebook per second of
audio), and the clip is cut to ``max_seconds``.

Bounded for any text: :func:`utils.abc.parse` refuses what no one could play (a tempo
outside 20-480 crotchets a minute, a note longer than four whole notes, a pitch off the
piano, a chord of more than eight notes), so a tune that :func:`utils.abc.check_tune`
accepts always plays; and :func:`synthesize` renders only the notes that start inside
the clip, cut at its end, never more than :data:`MAX_SECONDS`. The costliest tunes of
20,000 characters take about a second of CPU and tens of MB at 16 kHz
(``tests/test_music.py`` measures them against 5 s and 300 MB).

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
#: The longest waveform made here, in seconds, whatever the caller asks: two minutes,
#: more than any tune of the corpus lasts as written (the longest, 82 s).
MAX_SECONDS = 120.0
#: Sample rates :func:`synthesize` accepts, in Hz.
SAMPLE_RATES = (8_000, 48_000)
#: Each note is rendered in pieces of at most this many samples, so a long note costs no
#: more memory than a short one.
_BLOCK = 1 << 16
#: Loudness of every note (MIDI velocity), and how long each fades out at its end.
_VELOCITY = 90
_FADE_SECONDS = 0.1


def to_midi(text: str) -> Any:
    """The tune as a ``pretty_midi.PrettyMIDI`` (tempo from ``Q:`` or 140 crotchets a
    minute). Raises :class:`utils.abc.AbcError` when the text is not a readable tune."""
    return _midi(abc.parse(text))


def _seconds(tune: abc.Tune, note: abc.Note) -> tuple[float, float]:
    """When ``note`` starts and stops sounding, in seconds: 95 % of its length, at least 20 ms."""
    seconds_per_whole = 4 * 60.0 / tune.tempo_qpm
    start = float(note.start) * seconds_per_whole
    return start, start + max(float(note.duration) * seconds_per_whole * 0.95, 0.02)


def _midi(tune: abc.Tune) -> Any:
    import pretty_midi

    if not tune.notes:
        raise abc.AbcError("the tune has no notes to play")
    midi = pretty_midi.PrettyMIDI(initial_tempo=tune.tempo_qpm)
    melody = pretty_midi.Instrument(program=PROGRAM - 1, name=tune.title[:40])
    for note in tune.notes:
        start, end = _seconds(tune, note)
        melody.notes.append(pretty_midi.Note(velocity=_VELOCITY, pitch=note.pitch, start=start, end=end))
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


def _render(tune: abc.Tune, samples: int, sample_rate: int) -> np.ndarray:
    """The first ``samples`` samples of the tune, unnormalised.

    Only notes that start inside them are rendered, each cut at their end, in blocks of
    at most :data:`_BLOCK` samples; the notes of a chord share one envelope. The sound is
    sample for sample that of ``pretty_midi.Instrument.synthesize(wave=_tone)`` (an
    exponential decay, a 0.1 s fade-out at each note's own end), which made it before
    clipping came first.
    """
    out = np.zeros(samples)
    fade = np.linspace(1, 0, int(_FADE_SECONDS * sample_rate))
    chords: list[tuple[int, int, list[int]]] = []  # (first sample, end sample, pitches), in the tune's order
    for note in tune.notes:
        start_seconds, end_seconds = _seconds(tune, note)
        start, end = int(sample_rate * start_seconds), int(sample_rate * end_seconds)
        if start >= samples:
            continue
        if chords and chords[-1][:2] == (start, end):
            chords[-1][2].append(note.pitch)
        else:
            chords.append((start, end, [note.pitch]))
    for start, end, pitches in chords:
        length = end - start  # the whole note's: its fade-out is at its own end, even past the clip
        short_fade = np.linspace(1, 0, length) if length <= fade.shape[0] else None
        # pretty_midi.note_number_to_hz, and its phase step per sample
        steps = [2 * np.pi * (440.0 * 2.0 ** ((pitch - 69) / 12.0)) / sample_rate for pitch in pitches]
        for first in range(0, min(length, samples - start), _BLOCK):
            index = np.arange(first, min(first + _BLOCK, length, samples - start))
            envelope = np.exp(-index / (1.0 * sample_rate))
            if short_fade is not None:
                envelope *= short_fade[index]
            elif index[-1] >= length - fade.shape[0]:
                fading = index >= length - fade.shape[0]
                envelope[fading] *= fade[index[fading] - (length - fade.shape[0])]
            envelope *= _VELOCITY
            for step in steps:
                out[start + index[0] : start + index[-1] + 1] += envelope * _tone(step * index)
    return out


def synthesize(text: str, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """The tune as a mono ``float32`` waveform in ``[-1, 1]`` at ``sample_rate``: its first
    ``max_seconds`` (all of it when ``None``), and never more than :data:`MAX_SECONDS`.

    Only the notes that start inside the clip are rendered, so time and memory follow the
    clip, not the tune. Raises :class:`utils.abc.AbcError` for text that is not a playable
    tune, ``ValueError`` for a sample rate outside :data:`SAMPLE_RATES` or a ``max_seconds``
    that is not a positive number.

    >>> wav = synthesize("X:1\\nT:t\\nM:4/4\\nL:1/4\\nQ:1/4=120\\nK:C\\nCDEF|")
    >>> round(len(wav) / SAMPLE_RATE, 2)   # four crotchets at 120 a minute, plus the tail
    2.5
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not (
        SAMPLE_RATES[0] <= sample_rate <= SAMPLE_RATES[1]
    ):
        raise ValueError(f"sample_rate={sample_rate!r}: choose a whole number of Hz from {SAMPLE_RATES[0]} to "
                         f"{SAMPLE_RATES[1]} (the default is {SAMPLE_RATE})")
    if max_seconds is not None and (
        isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float, np.number)) or not max_seconds > 0
    ):
        raise ValueError(f"max_seconds={max_seconds!r}: give a positive number of seconds, or None for the "
                         f"whole tune (at most {MAX_SECONDS:.0f} s)")
    tune = abc.parse(text)
    if not tune.notes:
        raise abc.AbcError("the tune has no notes to play")
    end = min(tune.seconds + TAIL_SECONDS, MAX_SECONDS if max_seconds is None else float(max_seconds), MAX_SECONDS)
    audio = _render(tune, round(end * sample_rate), int(sample_rate))
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    if peak > 0:  # in place: no second copy of a long clip (and the same numbers as audio / peak * 0.9)
        np.divide(audio, peak, out=audio)
        audio *= 0.9
    return audio.astype(np.float32)


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
    """An ``IPython.display.Audio`` player for the tune (its first ``max_seconds``, at most
    :data:`MAX_SECONDS`).

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
