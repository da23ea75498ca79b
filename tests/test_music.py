"""ABC -> MIDI -> WAV -> Audio (utils.music): the sound of a tune, its files and its player."""

from __future__ import annotations

import numpy as np
import pytest

from utils import abc, data, music

SONGS = data.load_abc_songs()


def test_real_tune_to_wav_is_non_silent_and_lasts_as_written(tmp_path):
    tune = SONGS[0]
    expected = abc.parse(tune).seconds + music.TAIL_SECONDS
    wav = music.synthesize(tune)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) / music.SAMPLE_RATE - expected) < 0.01
    assert np.sqrt(np.mean(wav**2)) > 0.05 and np.abs(wav).max() <= 1.0
    # sound all the way through: no silent second before the tail
    seconds = wav[: int(abc.parse(tune).seconds) * music.SAMPLE_RATE].reshape(-1, music.SAMPLE_RATE)
    assert (np.sqrt((seconds**2).mean(axis=1)) > 0.02).all()
    path = music.write_wav(wav, tmp_path / "tune.wav")
    back, rate = music.read_wav(path)
    assert rate == 16_000 and len(back) == len(wav)
    np.testing.assert_allclose(back, wav, atol=1 / 16_000)


def test_pitch_of_the_sound_is_the_pitch_of_the_note():
    wav = music.synthesize("X:1\nT:A440\nM:4/4\nL:1/4\nQ:1/4=60\nK:C\n" + "A4|" * 4)  # 440 Hz, 16 s
    spectrum = np.abs(np.fft.rfft(wav[: music.SAMPLE_RATE * 2]))
    peak_hz = np.argmax(spectrum) * music.SAMPLE_RATE / (music.SAMPLE_RATE * 2)
    assert abs(peak_hz - 440) < 2


def test_midi_file_round_trip(tmp_path):
    import pretty_midi

    path = music.write_midi(SONGS[3], tmp_path / "tune.mid")
    midi = pretty_midi.PrettyMIDI(str(path))
    assert len(midi.instruments[0].notes) == len(abc.parse(SONGS[3]).notes)


def test_play_gives_inline_audio_and_refuses_garbage():
    audio = music.play(SONGS[0], max_seconds=2)
    assert audio.data[:4] == b"RIFF" and int.from_bytes(audio.data[24:28], "little") == 16_000
    assert len(audio.data) < 2.1 * 16_000 * 2 + 100  # 16-bit mono, cut to 2 s
    with pytest.raises(abc.AbcError, match="X: line"):
        music.play("not a tune")
