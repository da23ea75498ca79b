"""ABC -> MIDI -> WAV -> Audio (utils.music): the sound, and its bounds on any text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from utils import ROOT, abc, data, music

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


def test_the_sound_is_pretty_midis_sample_for_sample():
    """The renderer clips before it renders, but each note sounds as ``pretty_midi`` made it
    (the stored audio of notebook 04 depends on it): same samples, for clips that cut notes."""
    for song, seconds in [(SONGS[0], 6), (SONGS[1], 8.3), (SONGS[5], 3.05)]:
        tune = abc.parse(song)
        reference = music._midi(tune).synthesize(fs=music.SAMPLE_RATE, wave=music._tone)
        reference = reference[: round(min(tune.seconds + music.TAIL_SECONDS, seconds) * music.SAMPLE_RATE)]
        reference = (reference / np.abs(reference).max() * 0.9).astype(np.float32)
        np.testing.assert_array_equal(music.synthesize(song, max_seconds=seconds), reference)


def test_a_clip_is_the_start_of_the_whole_tune():
    """Notes cut at the clip's end sound there as they do in the whole tune (their fade-out
    stays at their own end), and notes after it are left out."""
    whole = music.synthesize(SONGS[0])
    clip = music.synthesize(SONGS[0], max_seconds=3.3)  # inside a note
    assert len(clip) == round(3.3 * music.SAMPLE_RATE)
    start = whole[: len(clip)]
    np.testing.assert_allclose(clip / np.abs(clip).max(), start / np.abs(start).max(), atol=2e-6)


def _long_tune(seconds_per_bar_note: str = "C4|") -> str:
    """16 notes of four whole notes at 20 crotchets a minute: 48 s each, 768 s as written."""
    return "X:1\nT:slow\nM:4/1\nL:1/1\nQ:1/4=20\nK:C\n" + seconds_per_bar_note * 16


def test_length_is_capped_whatever_the_caller_asks():
    text = _long_tune()
    assert abc.check_tune(text).valid and abc.parse(text).seconds == 768
    for asked in (None, 1e9, float("inf")):
        assert len(music.synthesize(text, max_seconds=asked)) == music.MAX_SECONDS * music.SAMPLE_RATE
    audio = music.play(text, max_seconds=10**6)
    assert len(audio.data) < (music.MAX_SECONDS * music.SAMPLE_RATE) * 2 + 100  # 16-bit samples and a header
    assert len(music.synthesize(text, max_seconds=2.5)) == 2.5 * music.SAMPLE_RATE


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"sample_rate": 10**9}, "sample_rate=1000000000"), ({"sample_rate": 100}, "8000 to 48000"),
     ({"sample_rate": 16_000.5}, "whole number"), ({"sample_rate": True}, "whole number"),
     ({"max_seconds": 0}, "positive number"), ({"max_seconds": -3}, "positive number"),
     ({"max_seconds": float("nan")}, "positive number"), ({"max_seconds": "12"}, "positive number"),
     ({"max_seconds": True}, "positive number")],
)
def test_arguments_that_make_no_sense_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        music.synthesize(SONGS[0], **kwargs)


# --- Bounds on any text: time and memory of adversarial tunes, measured in a child process ---

#: What any text may cost :func:`music.synthesize` or :func:`music.play` (the project's issue):
#: CPU seconds (not wall-clock: CI's cores are shared, and a loaded machine stretches wall time,
#: not the work done) and MB of peak resident memory above the process' before the call.
TIME_BUDGET_S = 5.0
MEMORY_BUDGET_MB = 300.0


def _fill(head: str, bar: str, limit: int = abc.MAX_TUNE_CHARS - 10) -> str:
    """``head`` and as many copies of ``bar`` as fit in ``limit`` characters."""
    return head + bar * ((limit - len(head)) // len(bar))


def _corpus_tune(limit: int = 19_800) -> str:
    """One header and the bodies of corpus tunes, one after another, up to ``limit`` characters."""
    text = "X:1\nT:all of them\nM:C\nL:1/8\nK:D\n"
    for song in SONGS:
        header, body = abc.header_and_body(song)
        if ("M:C\n" in header + "\n" and "K:D" in header and len(text) + len(body) + 1 <= limit
                and abc.check_tune(song).valid):
            text += body + "\n"
    return text


_REEL = "X:1\nT:t\nM:4/4\nL:1/8\nK:G\n"
_GOOD = "GABc dedB|" * 8

#: name -> (call, text, keyword arguments, "plays" or a fragment of the AbcError it must raise).
#: Every tune that plays is one check_tune accepts; every error is check_tune's reason too.
CASES: dict[str, tuple[str, str, dict, str]] = {
    # the issue's
    "issue: Q:0/4=120": ("play", _REEL.replace("K:", "Q:0/4=120\nK:") + _GOOD, {}, "tempo Q:0/4=120 is 0 crotchets"),
    "issue: a note C99999": ("play", _REEL + "C99999|" + _GOOD, {}, "column 1: a length of more than 3 digits"),
    "issue: Q:1/4=10, many bars": ("play", _fill(_REEL.replace("K:", "Q:1/4=10\nK:"), "GABc dedB|"), {},
                                   "tempo Q:1/4=10 is 10 crotchets"),
    "issue: a 19.8k-character tune, 12 s": ("play", _corpus_tune(), {}, "plays"),
    # invented: dense, long, slow, strange; every one accepted by check_tune
    "19.8k-character tune, whole (capped)": ("synthesize", _corpus_tune(), {"max_seconds": None}, "plays"),
    "9,856 notes at 480 a minute, whole": ("synthesize", _fill("X:1\nM:4/4\nL:1/32\nQ:1/2=240\nK:C\n", "C/" * 64 + "|"),
                                           {"max_seconds": None}, "plays"),
    "11,776 notes in 8-note chords, whole": (
        "synthesize", _fill("X:1\nM:4/4\nL:1/32\nQ:1/2=240\nK:C\n", "[CEGcegc'e']/" * 64 + "|"), {"max_seconds": None},
        "plays"),
    "8-note chords of 4 whole notes at 20 a minute, whole (capped)": (
        "synthesize", _fill("X:1\nM:4/1\nL:1/1\nQ:1/4=20\nK:C\n", "[CEGcegc'e']4|"), {"max_seconds": None}, "plays"),
    "the same at 48 kHz, max_seconds=1e9 (capped)": (
        "synthesize", _fill("X:1\nM:4/1\nL:1/1\nQ:1/4=20\nK:C\n", "[CEGcegc'e']4|"),
        {"max_seconds": 1e9, "sample_rate": 48_000}, "plays"),
    "L:1/1 with notes of 4 whole notes": ("play", _long_tune("C4|D4|"), {}, "plays"),
    "play for a million seconds (capped)": ("play", _corpus_tune(), {"max_seconds": 10**6}, "plays"),
    "1,500 notes of 1/2048 piled up, then a reel": ("synthesize", _REEL + "C////////" * 1500 + "|" + _GOOD,
                                                    {"max_seconds": None}, "plays"),
    "tuplets stretched 9:2 and squeezed 2:9, whole": (
        "synthesize", _fill("X:1\nM:9/8\nL:1/8\nK:D\n", "(2:9DF|" + "(9:2:9DEFGABcde" * 4 + "D|"), {}, "plays"),
    "broken rhythms >>> and <<<": ("play", _fill("X:1\nM:2/4\nL:1/8\nK:D\n", "D>>>F A<<<d|"), {}, "plays"),
    "chains of ties": ("play", _fill(_REEL, "G-G-G-G-G-G-G-G|"), {}, "plays"),
    "huge repeat counts": (
        "play", _fill(_REEL, "|:GABc dedB|GABc dedB|GABc dedB|GABc dedB::" + "GABc dedB|" * 4 + "[1,2,3,4 GABc dedB:::|]"),
        {}, "plays"),
    "Q: in odd forms": (
        "play", _fill(_REEL.replace("K:", 'Q:"Presto" 1/8 1/8 1/8 1/8=120 "fast"\nK:'), "GABc dedB|"), {}, "plays"),
    # invented: refused at once, with the reason
    "C999999": ("play", _REEL + _GOOD + "C999999|", {}, "line 6, column 81: a length of more than 3 digits"),
    "a length of 5,000 digits": ("play", _REEL + _GOOD + "C" + "9" * 5000, {}, "a length of more than 3 digits"),
    "Q:1/4=1200": ("play", _REEL.replace("K:", "Q:1/4=1200\nK:") + _GOOD, {}, "1200 crotchets a minute"),
    "an inline [Q:1/4=1]": ("play", _REEL + _GOOD + "[Q:1/4=1]" + _GOOD, {}, "line 6: tempo Q:1/4=1 is 1 crotchets"),
    "a note 99 octaves up": ("play", _REEL + "c" + "'" * 99 + _GOOD, {}, "outside a piano's range"),
    "a chord of 19,880 notes": ("play", _REEL + "[" + "C" * 19_880 + "]|" + _GOOD, {}, "a chord of 19880 notes"),
    "9,900 notes of length 0": ("play", _REEL + "C0" * 9_900 + "|" + _GOOD, {}, "length 0 is not music"),
    "two voices": ("play", _REEL.replace("K:", "V:1\nV:2\nK:") + "V:1\n" + _GOOD + "\nV:2\n" + _GOOD, {},
                   "unexpected 'V'"),
}

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from utils import abc, music


def status_kb(field):
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def peak_kb():
    hwm = status_kb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def reset_peak():
    # Linux: writing 5 to clear_refs sets the peak (VmHWM) back to the current RSS
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return status_kb("VmRSS")
    except OSError:
        return None


cases, headroom = json.load(sys.stdin), float(sys.argv[2])
music.play("X:1\nM:4/4\nL:1/8\nK:G\n" + "GABc dedB|" * 4, max_seconds=1)  # imports and first calls, before measuring
baseline = peak_kb()
size = status_kb("VmSize")
if size:  # a regression fails with MemoryError here instead of taking the machine down
    resource.setrlimit(resource.RLIMIT_AS, (int(size * 1024 + headroom * 2**30), resource.getrlimit(resource.RLIMIT_AS)[1]))
results = {}
for name, call, text, kwargs in cases:
    started = time.process_time()
    verdict = abc.check_tune(text)
    result = {"check_valid": verdict.valid, "check_reason": verdict.reason, "check_cpu_s": time.process_time() - started}
    before = reset_peak() or baseline
    out = None
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        out = getattr(music, call)(text, **kwargs)
        samples = (len(out.data) - 44) // 2 if call == "play" else len(out)
        result.update(outcome="plays", seconds=samples / kwargs.get("sample_rate", music.SAMPLE_RATE))
    except Exception as err:
        result.update(outcome=type(err).__name__, message=str(err)[:400])
    result.update(cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall,
                  peak_mb=(peak_kb() - before) / 1024)
    del out
    results[name] = result
print(json.dumps(results))
"""


def measure(cases: dict[str, tuple[str, str, dict, str]], root: Path = ROOT, headroom_gib: float = 2.0) -> dict:
    """Run each case's ``music.<call>(text, **kwargs)`` in one fresh Python process (the code
    under ``root``) and return, per case, its outcome, CPU and wall seconds, the peak RSS
    it added (MB; Linux resets the peak between cases) and check_tune's verdict. The child
    may map at most ``headroom_gib`` GiB more than it has after its imports."""
    payload = json.dumps([[name, call, text, kwargs] for name, (call, text, kwargs, _) in cases.items()])
    # glibc: big arrays in their own mappings, returned when freed, so each case's peak is its own
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 20)}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(headroom_gib)], input=payload,
                           capture_output=True, text=True, timeout=300, check=False, env=env)
    assert child.returncode == 0, child.stderr[-2000:]
    return json.loads(child.stdout)


@pytest.fixture(scope="module")
def measured() -> dict:
    return measure(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_any_text_plays_within_time_and_memory_bounds_or_is_refused(measured, name):
    """Tunes that check_tune accepts play, within the bounds; the rest are refused with
    check_tune's own reason. Both directions keep the player and the check in agreement."""
    call, text, kwargs, expected = CASES[name]
    got = measured[name]
    assert len(text) <= abc.MAX_TUNE_CHARS
    if expected == "plays":
        assert got["check_valid"], got["check_reason"]
        assert got["outcome"] == "plays", got
        asked = kwargs.get("max_seconds", 12.0 if call == "play" else None)
        assert 0 < got["seconds"] <= min(asked or music.MAX_SECONDS, music.MAX_SECONDS) + 1e-6
    else:
        assert got["outcome"] == "AbcError" and expected in got["message"], got
        assert not got["check_valid"] and got["check_reason"] == got["message"]
    assert got["cpu_s"] < TIME_BUDGET_S, got
    assert got["peak_mb"] < MEMORY_BUDGET_MB, got
    assert got["check_cpu_s"] < 1.0, got


_FIELDS = ["Q:1/4=120", "Q:0/4=120", "Q:1/4=10", "Q:1/2=240", "Q:1/2=241", "Q:3/8=40", 'Q:"Allegro"', "Q:C=120",
           "L:1/1", "L:1/32"]
_SNIPPETS = ["C99", "C32", "C33", "c'''", "c''''", "A,,,,", "A,,,,,", "[CEGc]", "[CEGcegc'e']", "[CEGcegc'e'g']",
             "(2:9", "(9:2:9", ">>>", "<", "-", "C0", "C/", "C////////", "z8", "z33", "[Q:1/4=10]", "[Q:1/4=120]",
             "[L:1/1]", "[L:1/32]", "C999999"]


def test_what_check_tune_accepts_plays_and_what_the_player_refuses_it_refuses():
    """Corpus tunes with strange fields and notes put in at random: whatever check_tune
    accepts plays; whatever the player refuses, check_tune refuses with the same reason."""
    rng = np.random.default_rng(0)
    accepted = refused = 0
    for _ in range(150):
        header, body = abc.header_and_body(SONGS[rng.integers(len(SONGS))])
        if rng.random() < 0.5:
            fields, key = header.rsplit("\n", 1)
            header = f"{fields}\n{rng.choice(_FIELDS)}\n{key}"
        pieces = list(body)
        for _ in range(rng.integers(1, 4)):
            pieces.insert(rng.integers(len(pieces) + 1), f" {rng.choice(_SNIPPETS)} ")
        text = header + "\n" + "".join(pieces)
        verdict = abc.check_tune(text)
        try:
            wav = music.synthesize(text, max_seconds=1.0)
        except abc.AbcError as err:
            assert not verdict.valid and verdict.reason == str(err), text
            refused += 1
        else:
            assert verdict.valid or verdict.kind in ("short", "meter"), (verdict.reason, text)
            assert 0 < len(wav) <= music.SAMPLE_RATE
            accepted += verdict.valid
    assert accepted >= 20 and refused >= 20, (accepted, refused)


def test_present_shows_the_longest_playable_tune_and_logs_it(capsys, tmp_path):
    songs = data.load_abc_songs()[:3]
    logged = []

    class Experiment:
        def log_text(self, text, metadata=None):
            logged.append(("text", text))

        def log_audio(self, path, file_name=None):
            logged.append(("audio", file_name, music.read_wav(path)[1]))

    player = music.present(["not a tune", *songs], experiment=Experiment(), max_seconds=2)
    chosen = max(songs, key=len)
    assert capsys.readouterr().out.strip() == chosen.strip()
    assert player is not None and player.data[:4] == b"RIFF"
    assert logged == [("text", chosen), ("audio", "generated_tune.wav", music.SAMPLE_RATE)]
    assert music.present(["garbage", "X:1"]) is None
    assert "None of the first 2 tunes is playable" in capsys.readouterr().out
