"""The ABC reader and the validity measure (utils.abc): pitches, lengths, bars, keys,
transposition, what makes a tune playable, and the reasons given when it is not."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest

from utils import abc, data

SONGS = data.load_abc_songs()


def test_validity_accepts_real_tunes_and_rejects_fakes():
    rates = abc.acceptance_rates(SONGS, seed=0)
    assert rates["real tunes"] >= 0.99, rates
    for kind in abc.FAKE_KINDS:
        assert rates[kind] <= 0.05, (kind, rates)


def test_shuffled_tokens_are_legal_abc_that_only_the_bar_rule_rejects():
    rng = np.random.default_rng(1)
    alphabet = "".join(sorted(set("".join(SONGS))))
    fakes = [abc.corrupt(t, "header + shuffled tokens", rng, alphabet) for t in SONGS[:200]]
    readable = []
    for fake in fakes:
        try:
            abc.parse(fake)
            readable.append(fake)
        except abc.AbcError:
            pass
    assert len(readable) / len(fakes) > 0.9  # nearly all read as ABC ...
    reasons = [abc.check_tune(f).reason for f in readable]
    assert all("one full bar" in r for r in reasons), [r for r in reasons if "one full bar" not in r][:3]


@pytest.mark.parametrize(
    "garbage",
    [None, 42, b"X:1", "", "X", "X:1\n", "K:G\nabc", "\x00\x01\x02", "X:1\nT:a\nM:4/4\nK:G\n" + "|" * 20_000,
     "X:1\nT:a\nM:4/4\nK:G\n" + "[" * 5000, "X:1\nT:a\nM:4/4\nK:G\n" + "(" * 5000 + "A",
     "X:1\nT:a\nM:4/4\nK:G\n" + '"' * 9999, "X:1\nT:a\nM:0/0\nK:G\nabc|", "X:1\nT:a\nM:4/4\nL:1/0\nK:G\nabc|",
     "X:1\nT:a\nM:4/4\nK:G\nA/0 B|", "X:1\nT:a\nM:4/4\nK:G\nc'''''''''' d|", "X:1\nT:a\nM:4/4\nK:G\nab>|",
     "X:1\nT:a\nM:4/4\nK:Z#\nabc|", "🎻" * 300],
)
def test_garbage_never_raises_and_never_hangs(garbage):
    started = time.perf_counter()
    verdict = abc.check_tune(garbage)
    assert not verdict.valid and verdict.reason
    assert time.perf_counter() - started < 1.0


def test_huge_text_is_refused_at_once():
    started = time.perf_counter()
    verdict = abc.check_tune("X:1\nT:a\nM:4/4\nK:G\n" + "abcd|" * 1_000_000)
    assert not verdict.valid and "too long" in verdict.reason
    assert time.perf_counter() - started < 0.5


def test_reasons_name_the_problem():
    head = "X:1\nT:t\nM:4/4\nL:1/8\nK:G\n"
    assert "unexpected 'q'" in abc.check_tune(head + "abcq defg|").reason
    assert "at least 16" in abc.check_tune(head + "abcd|efga|").reason
    assert abc.check_tune("X:1\nM:4/4\nK:G\n" + "GABc dedB|" * 6).valid  # a title is not needed to play
    assert abc.check_tune("X:1\nM:4/4\nK:G\n" + "TGABc !trill!d.e~dB|" * 6).valid  # ABC 2.1 decorations
    assert "key K:H" in abc.check_tune("X:1\nT:t\nM:4/4\nK:H\nabc|").reason


def test_pitches_follow_key_and_bar_accidentals():
    tune = abc.parse("X:1\nT:t\nM:4/4\nL:1/8\nK:D\nF f ^G G =F F | F G,, c'|")
    assert [n.pitch for n in tune.notes] == [66, 78, 68, 68, 65, 65, 66, 43, 85]  # c' is C#6 in D


@pytest.mark.parametrize(
    "body, lengths",
    [
        ("A2 B/ c// d3/2 e/2|", ["1/4", "1/16", "1/32", "3/16", "1/16"]),
        ("A>B A<B A>>B|", ["3/16", "1/16", "1/16", "3/16", "7/32", "1/32"]),
        ("(3ABc d|", ["1/12", "1/12", "1/12", "1/8"]),
        ("[DFA]2 z A|", ["1/4", "1/4", "1/4", "1/8"]),
    ],
)
def test_note_lengths(body, lengths):
    tune = abc.parse("X:1\nT:t\nM:4/4\nL:1/8\nK:C\n" + body)
    assert [n.duration for n in tune.notes] == [Fraction(x) for x in lengths]


def test_bars_repeats_and_endings():
    tune = abc.parse("X:1\nT:t\nM:6/8\nL:1/8\nK:G\nD|:GAB c2A|BAG E3|[1 DED G2:|[2 GFE D3||")
    assert tune.bar_lengths[0] == Fraction(1, 8)  # the pick-up
    assert tune.bar_lengths[1:3] == [Fraction(3, 4)] * 2
    assert abc.full_bar_share(tune) == 1.0


def test_key_signatures():
    assert abc.key_signature("G Major") == {"F": 1}
    assert abc.key_signature("E Minor") == {"F": 1}
    assert abc.key_signature("D Mixolydian") == {"F": 1}
    assert abc.key_signature("Bb") == {"B": -1, "E": -1}
    assert abc.key_signature("G# Minor") == {letter: 1 for letter in "FCGDA"}
    with pytest.raises(abc.AbcError, match="8 accidentals"):
        abc.key_signature("G# Major")
    with pytest.raises(abc.AbcError, match="mode"):
        abc.key_signature("D Funky")


@pytest.mark.parametrize("semitones", [5, -5, 7, -7, 2, -3, 12])
def test_transposed_corpus_sounds_the_same_tunes_in_another_key(semitones):
    """Every note moves by exactly the interval; rhythm, bars and validity do not change."""
    moved = 0
    for song in SONGS:
        before = abc.check_tune(song)
        try:
            text = abc.transpose(song, semitones)
        except abc.AbcError:
            assert not before.valid or semitones not in (5, -5, 7, -7, 12), song[:60]
            continue
        after = abc.check_tune(text)
        assert after.valid == before.valid, (after.reason, text[:200])
        if not before.valid:
            continue
        assert [n.pitch + semitones for n in before.tune.notes] == [n.pitch for n in after.tune.notes], text[:200]
        assert [(n.start, n.duration) for n in before.tune.notes] == [(n.start, n.duration) for n in after.tune.notes]
        assert after.tune.bar_lengths == before.tune.bar_lengths
        moved += 1
    assert moved >= 0.98 * len(SONGS)


@pytest.mark.parametrize(
    "key, semitones, expected",
    [("D Major", 5, "G Major"), ("G Major", -5, "D Major"), ("A Dorian", 5, "D Dorian"),
     ("E Minor", 7, "B Minor"), ("F Major", 5, "Bb Major"), ("F# Minor", -5, "C# Minor"), ("Bb", 2, "C")],
)
def test_transposed_keys_keep_their_mode(key, semitones, expected):
    text = abc.transpose(f"X:1\nM:4/4\nL:1/8\nK:{key}\n" + "GABc dedB|" * 4, semitones)
    assert text.split("\n")[3] == f"K:{expected}"


def test_transposition_respells_accidentals_and_octaves():
    head = "X:1\nM:4/4\nL:1/8\nK:D Major\n"
    # ^f is F# (already in D): a fourth up it is B, natural in G, so it must be written =b
    assert abc.transpose(head + "^f ^g =c _B, a'|", 5).split("\n")[-1] == "=b ^c' =f _E d''|"
    # inline keys, annotations, chords and grace notes move too; text and bar lines do not
    text = abc.transpose(head + '"Verse" {g}[DF]A [K:A Major] c|]', -5)
    assert text.split("\n")[-1] == '"Verse" {d}[A,C]E [K:E Major] G|]'


def test_transposition_refuses_what_it_cannot_spell():
    with pytest.raises(abc.AbcError, match="accidentals"):
        abc.transpose("X:1\nM:4/4\nK:C# Major\nCDEF|", 7)  # G# major: 8 sharps
    with pytest.raises(abc.AbcError, match="unexpected"):
        abc.transpose("X:1\nM:4/4\nK:G\nabq|", 5)
    with pytest.raises(abc.AbcError, match="K:"):
        abc.transpose("X:1\nM:4/4\nabc|", 5)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("X:1\nT:t\nK:G\nGABc dedB|" * 6, "header"),  # no meter
        ("X:1\nT:t\nM:4/4\nK:H\nGABc dedB|", "header"),  # a key that does not exist
        ("T:t\nM:4/4\nK:G\nGABc dedB|", "header"),  # no X: line
        ("X:1\nT:t\nM:4/4\nwhat is this\nK:G\nGABc dedB|", "header"),
        ("X:1\nT:t\nM:4/4\nL:1/8\nK:G\n" + "GABc dedB|" * 3 + "GAqc dedB|", "body"),  # a stray character
        ("X:1\nT:t\nM:4/4\nL:1/8\nK:G\n" + "GABc dedB|" * 3 + "M:5/0\nGABc dedB|", "body"),  # a broken field in the body
        ("X:1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc|", "short"),
        ("X:1\nT:t\nM:4/4\nL:1/8\nK:G\n" + "GAB cBA|" * 8, "meter"),  # jig bars under a reel's meter
        ("X:1\nT:t\nM:4/4\nL:1/8\nK:G\n" + "GABc dedB|" * 8, ""),
    ],
)
def test_failure_kinds_say_where_a_tune_is_broken(text, kind):
    verdict = abc.check_tune(text)
    assert verdict.kind == kind, verdict.reason
    assert verdict.valid == (kind == "")
    assert kind == "" or kind in abc.FAILURE_KINDS


def test_every_invalid_verdict_has_a_kind():
    rng = np.random.default_rng(3)
    alphabet = "".join(sorted(set("".join(SONGS))))
    for how in abc.FAKE_KINDS:
        for tune in SONGS[:40]:
            verdict = abc.check_tune(abc.corrupt(tune, how, rng, alphabet))
            assert verdict.valid or verdict.kind in abc.FAILURE_KINDS, (how, verdict.reason)


def test_usual_bar_counts_unit_notes():
    jig = abc.parse("X:1\nM:6/8\nL:1/8\nK:D\n" + "dAF DFA|" * 5 + "d3 d2|")
    assert abc.usual_bar(jig) == 6 and abc.usual_bar(jig) * jig.unit == jig.meter
    reel_in_sixteenths = abc.parse("X:1\nM:C\nL:1/16\nK:D\n" + "d2A2F2A2 d2A2F2A2|" * 4)
    assert abc.usual_bar(reel_in_sixteenths) == 16


_HEAD = "X:1\nT:t\nM:4/4\nL:1/8\nK:C\n"
_REEL = "GABc dedB|" * 6


def _with_tempo(q: str) -> str:
    return _HEAD.replace("K:", f"Q:{q}\nK:") + _REEL


@pytest.mark.parametrize(
    "q, qpm",
    [("1/4=120", 120), ("3/8=40", 60), ("1/2=120", 240), ("1/4 3/8=40", 100), ('"Allegro" 1/4=120', 120),
     ('1/4=120 "Allegro"', 120), (" 1/4 = 90 ", 90), ("200", 100),  # the old form counts L: notes: 200 quavers
     ('"Slow air"', abc.DEFAULT_TEMPO_QPM),  # words only: the default tempo
     ("1/4=20", abc.MIN_TEMPO_QPM), ("1/2=240", abc.MAX_TEMPO_QPM)],  # the limits themselves
)
def test_tempo_forms_read_as_crotchets_a_minute(q, qpm):
    verdict = abc.check_tune(_with_tempo(q))
    assert verdict.valid, verdict.reason
    assert verdict.tune.tempo_qpm == qpm


@pytest.mark.parametrize(
    "q, fragment",
    [("0/4=120", "is 0 crotchets a minute"), ("1/4=0", "is 0 crotchets"), ("1/4=10", "is 10 crotchets"),
     ("1/8=39", "is 19.5 crotchets"), ("1/2=241", "is 482 crotchets"), ("1/4=1200", "is 1200 crotchets"),
     ("999/1=999", "is 3.992e+06 crotchets"), ("1/0=120", "divides by zero"), ("-1/4=120", "not understood"),
     ("C=120", "not understood"), ("", "not understood"), ("1/4=", "not understood"),
     ('"Allegro 1/4=120', "not understood"), ("1/4=12345", "not understood"), ("1/4=120=120", "not understood")],
)
def test_impossible_tempos_are_refused_with_the_playable_range(q, fragment):
    verdict = abc.check_tune(_with_tempo(q))
    assert not verdict.valid and verdict.kind == "header"
    assert fragment in verdict.reason and f"Q:{q.strip()}" in verdict.reason, verdict.reason
    assert "20 to 480" in verdict.reason or "not understood" in verdict.reason or "zero" in verdict.reason


def test_a_tempo_in_the_body_is_checked_too():
    assert abc.check_tune(_HEAD + _REEL + "\n[Q:1/4=100]" + _REEL).valid
    verdict = abc.check_tune(_HEAD + _REEL + "\nQ:0/4=100\n" + _REEL)
    assert verdict.kind == "body" and verdict.reason.startswith("line 7: tempo Q:0/4=100 is 0 crotchets")


@pytest.mark.parametrize(
    "body, where, fragment",
    [("GABc C99999|", "line 6, column 6", "a length of more than 3 digits"),
     ("GABc " + "C" + "9" * 5000 + "|", "line 6, column 6", "a length of more than 3 digits"),  # not int()'s own error
     ("GABc C33|", "line 6, column 6", "33/8 whole notes is longer than the 4 whole notes"),
     ("z33 GABc|", "line 6, column 1", "a note or rest of 33/8 whole notes"),
     ("C32>D|", "line 6, column 4", "a note or rest of 6 whole notes"),  # broken rhythm stretches it past the limit
     ("(2:9C8 D|", "line 6, column 5", "9/2 whole notes"),  # a tuplet stretches it 9/2
     ("GA c''''|", "line 6, column 4", "note c'''' (MIDI pitch 120) is outside a piano's range"),
     ("A,,,,, GA|", "line 6, column 1", "note A,,,,, (MIDI pitch 9)"),
     ("^c''' GA|", "line 6, column 1", "MIDI pitch 109"),
     ("GA [CEGcegc'e'g']|", "line 6, column 4", "a chord of 9 notes has more than 8"),
     ("GA C0 B|", "line 6, column 4", "a note or rest of length 0 is not music"),
     ("GA C/0 B|", "line 6, column 4", "a note length divides by zero")],
)
def test_unplayable_notes_say_which_and_where(body, where, fragment):
    verdict = abc.check_tune(_HEAD + body + _REEL)
    assert not verdict.valid and verdict.kind == "body"
    assert verdict.reason.startswith(where + ": ") and fragment in verdict.reason, verdict.reason


@pytest.mark.parametrize(
    "text",
    [_HEAD + "C32|" + _REEL + "C32|",  # four whole notes, the longest
     "X:1\nM:4/1\nL:1/1\nQ:1/4=20\nK:C\n" + "C4|" * 16,  # L:1/1: the same, 48 s each at the slowest tempo
     _HEAD + "A,,,, c'''|" + _REEL,  # the lowest and highest piano keys
     _HEAD + "[CEGcegc'e']8|" + _REEL,  # the biggest chord
     _HEAD + "C/////// D|" + _REEL],  # a tiny note is still a note
)
def test_the_limits_themselves_are_playable(text):
    verdict = abc.check_tune(text)
    assert verdict.valid, verdict.reason
