"""ABC notation: a strict reader for the subset the folk-tune corpus uses, and the one
function that decides whether a (generated) block of text is a playable tune.

Why our own reader: the PyPI options were looked at first. ``pyabc2`` (0.1.4) raises on
chords, assumes a unit length of 1/8, ignores broken rhythms, rests and tuplets, and
skips characters it does not understand -- so it would call a shuffled tune a tune;
``music21`` parses ABC but costs ~300 MB and ~35 ms a tune and accepts broken tunes.
The corpus uses a small, regular part of ABC 2.1 (notes, accidentals, octaves, lengths,
bar lines, repeats and endings, broken rhythm, triplets, chords, grace notes, slurs,
ties, annotations, inline fields), which a tokenizer of one regular expression reads
exactly; anything it cannot read makes the tune invalid, with the reason. So does what
no one could play (a tempo of 0, a note of 99999 units, a pitch off the piano): the
limits are the ``MIN_``/``MAX_`` constants below, and messages say which note and where.
MIDI and sound are in :mod:`utils.music`.

Introduced in ``notebooks/04_music_lstm.ipynb``.

>>> tune = parse("X:1\\nT:Scale\\nM:4/4\\nL:1/8\\nK:D\\nDEFG ABcd|")
>>> [n.pitch for n in tune.notes][:4], tune.notes[2].duration   # F is F# in D major
([62, 64, 66, 67], Fraction(1, 8))
>>> check_tune("X:1\\nT:t\\nK:G\\nzz|").reason
'no meter (M:) in the header'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: Longer text is not a tune (and is refused before any work, so nothing can hang).
MAX_TUNE_CHARS = 20_000
#: A playable tune has at least this many notes ...
MIN_NOTES = 16
#: ... and at least this many bars ...
MIN_BARS = 4
#: ... and at least this share of its inner bars are exactly one bar long.
MIN_FULL_BAR_SHARE = 0.6
#: The tempo of a tune without ``Q:``, in crotchets (quarter notes) a minute.
DEFAULT_TEMPO_QPM = 140.0
#: The slowest and fastest tempo a playable tune may ask for, in crotchets a minute:
#: 20 is one beat every three seconds, slower than any largo; 480 is twice a fast reel
#: (``Q:1/2=120``). ``Q:0/4=120`` or ``Q:1/4=10`` is not a tempo anyone plays.
MIN_TEMPO_QPM, MAX_TEMPO_QPM = 20.0, 480.0
#: The longest note, chord or rest, in whole notes: four bars of 4/4 (``C32`` at
#: ``L:1/8``, ``C4`` at ``L:1/1``). The corpus' longest note is 3/4 of a whole note.
MAX_NOTE_WHOLES = 4
#: The most notes one chord may sound together (the corpus has no chords; a hand has five fingers).
MAX_CHORD_NOTES = 8
#: A length's number (``C12``, ``C3/16``) has at most this many digits.
MAX_LENGTH_DIGITS = 3
#: MIDI pitches a tune may use: a piano's keys, A0 (21) to C8 (108), within MIDI's 0-127.
PITCH_RANGE = (21, 108)

_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_ORDER, _FLAT_ORDER = "FCGDAEB", "BEADGCF"
# Sharps (+) or flats (-) of each major key, and how each mode shifts them.
# G#, D#, A# and Fb major need more than 7, but their minor and other modes do not (G# minor: 5 sharps).
_MAJOR_SHARPS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7, "G#": 8, "D#": 9, "A#": 10,
                 "F": -1, "Bb": -2, "Eb": -3, "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7, "Fb": -8}
_MODES = {"maj": 0, "ion": 0, "": 0, "mix": -1, "dor": -2, "min": -3, "m": -3, "aeo": -3,
          "phr": -4, "loc": -5, "lyd": 1}
_ACC_SHIFT = {"^": 1, "^^": 2, "_": -1, "__": -2, "=": 0}
#: accidental, letter, octave marks: the pitch part of a note
_PITCH = r"(\^{1,2}|_{1,2}|=)?([A-Ga-g])([,']*)"
_KEY_RE = re.compile(r"^\s*(?P<tonic>[A-G][#b]?)\s*(?P<mode>[A-Za-z]*)\s*$")

_DUR = r"(?P<num>\d*)(?:(?P<slash>/+)(?P<den>\d*))?"
_NOTE = r"(?P<acc>\^{1,2}|_{1,2}|=)?(?P<letter>[A-Ga-g])(?P<oct>[,']*)" + _DUR
_CHORD_NOTE = r"(?:\^{1,2}|_{1,2}|=)?[A-Ga-g][,']*\d*(?:/+\d*)?"
_TOKEN = re.compile(
    "|".join(
        [
            r"(?P<space>[ \t]+|\\$)",
            r"(?P<decoration>![A-Za-z0-9.+<>()]+!|\+[A-Za-z0-9.<>()]+\+|[~.HLMOPSTuv])",  # ABC 2.1 section 4.14
            r"(?P<eol>!)",  # the corpus marks line ends with "!"
            r"(?P<annotation>\"[^\"\n]*\")",
            r"(?P<field>\[[KMLQPTw]:[^\]\n]*\])",
            r"(?P<chord>\[(?:" + _CHORD_NOTE + r")+\](?P<cnum>\d*)(?:(?P<cslash>/+)(?P<cden>\d*))?)",
            r"(?P<bar>(?:\[\||::|:*\|+\]?:*)(?:[1-4](?:[,-][1-4])*)?)",
            r"(?P<ending>\[[1-4](?:[,-][1-4])*)",
            r"(?P<grace>\{(?:" + _CHORD_NOTE + r")+\})",
            r"(?P<tuplet>\((?P<p>[2-9])(?::(?P<q>[2-9]?)(?::(?P<r>[2-9]?))?)?)",
            r"(?P<slur>[()])",
            r"(?P<tie>-)",
            r"(?P<broken>[<>]{1,3})",
            r"(?P<note>" + _NOTE + r")",
            r"(?P<rest>(?P<rkind>[zx])" + _DUR.replace("P<", "P<r") + r")",
        ]
    )
)
_BODY_FIELD = re.compile(r"^(?P<key>[KMLQPTWNRw]):(?P<value>.*)$")
_HEADER_FIELD = re.compile(r"^(?P<key>[A-Za-z]):(?P<value>.*)$")
_TUPLET_Q = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}


class AbcError(ValueError):
    """Text that is not a tune this reader can play; the message says why, and ``part``
    where: ``"header"`` (up to and including the ``K:`` line) or ``"body"``."""

    part = "body"


class _Unplayable(AbcError):
    """Raised inside one body token; the reader adds the line and column."""


@dataclass(frozen=True)
class Note:
    """One sounding note: MIDI pitch, start and duration in whole notes."""

    pitch: int
    start: Fraction
    duration: Fraction


@dataclass
class Tune:
    """A parsed tune: header fields, notes in time order, and each bar's length in
    whole notes (``bar_lengths``), with whether a repeat or ending touches it."""

    header: dict[str, str]
    meter: Fraction
    unit: Fraction
    tempo_qpm: float
    notes: list[Note] = field(default_factory=list)
    bar_lengths: list[Fraction] = field(default_factory=list)
    bar_at_repeat: list[bool] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.header.get("T", "(untitled)")

    @property
    def seconds(self) -> float:
        """How long the tune plays (as written, repeats not expanded)."""
        end = max((n.start + n.duration for n in self.notes), default=Fraction(0))
        return float(end) * 4 * 60.0 / self.tempo_qpm


def parse_meter(value: str) -> Fraction:
    """``M:`` as a bar length in whole notes: ``C`` is 4/4, ``C|`` is 2/2.

    >>> parse_meter("6/8"), parse_meter("C|")
    (Fraction(3, 4), Fraction(1, 1))
    """
    text = value.strip()
    if text in ("C", "C|"):
        return Fraction(1)
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})", text)
    if not match or int(match[1]) == 0 or int(match[2]) not in (1, 2, 4, 8, 16):
        raise AbcError(f"meter M:{value} is not understood (expected e.g. 6/8, 4/4, C or C|)")
    return Fraction(int(match[1]), int(match[2]))


def parse_unit(value: str) -> Fraction:
    """``L:`` as a fraction of a whole note."""
    match = re.fullmatch(r"\s*1/(1|2|4|8|16|32)\s*", value)
    if not match:
        raise AbcError(f"unit length L:{value} is not understood (expected e.g. 1/8)")
    return Fraction(1, int(match[1]))


def key_signature(value: str) -> dict[str, int]:
    """``K:`` as the semitone shift of each letter, e.g. D major sharpens F and C.

    >>> key_signature("D Major")
    {'F': 1, 'C': 1}
    >>> key_signature("A Dorian")   # the notes of G major, from A
    {'F': 1}
    >>> key_signature("F")
    {'B': -1}
    """
    text = value.strip()
    if text.lower() in ("none", ""):
        return {}
    match = _KEY_RE.match(text)
    if not match or match["tonic"] not in _MAJOR_SHARPS:
        raise AbcError(f"key K:{value} is not understood (expected e.g. G, D Major, A Dorian, E Minor)")
    mode = match["mode"].lower()[:3]
    if mode not in _MODES:
        raise AbcError(f"mode {match['mode']!r} in K:{value} is not understood")
    count = _MAJOR_SHARPS[match["tonic"]] + _MODES[mode]
    if abs(count) > 7:
        raise AbcError(f"key K:{value} would need {abs(count)} accidentals")
    if count >= 0:
        return {letter: 1 for letter in _SHARP_ORDER[:count]}
    return {letter: -1 for letter in _FLAT_ORDER[:-count]}


def parse_tempo(value: str, unit: Fraction) -> float | None:
    """``Q:`` as crotchets (quarter notes) a minute; ``None`` for a tempo in words only.

    The forms of ABC 2.1: ``1/4=120``; several beats that add up, ``1/4 3/8=40``; words
    before or after, ``"Allegro" 1/4=120``; and the old ``120``, which counts notes of
    the unit length ``unit``. Anything else, or a tempo outside :data:`MIN_TEMPO_QPM`
    to :data:`MAX_TEMPO_QPM`, raises :class:`AbcError` saying why.

    >>> parse_tempo("1/4=120", Fraction(1, 8)), parse_tempo("3/8=40", Fraction(1, 8))
    (120.0, 60.0)
    >>> parse_tempo("200", Fraction(1, 8)), parse_tempo('"Allegro"', Fraction(1, 8))
    (100.0, None)
    >>> parse_tempo("0/4=120", Fraction(1, 8))
    Traceback (most recent call last):
    ...
    utils.abc.AbcError: tempo Q:0/4=120 is 0 crotchets a minute; a playable tempo is 20 to 480 (e.g. Q:1/4=120)
    """
    words = re.sub(r'"[^"\n]*"', " ", value).strip()  # "Allegro" and the like say nothing we play
    if not words and '"' in value:
        return None
    match = re.fullmatch(r"(?:(?P<beats>\d{1,3}/\d{1,3}(?:\s+\d{1,3}/\d{1,3})*)\s*=\s*)?(?P<bpm>\d{1,4})", words)
    if not match:
        raise AbcError(f"tempo Q:{value.strip()} is not understood (expected e.g. Q:1/4=120 or Q:3/8=100)")
    beat = Fraction(0) if match["beats"] else unit
    for part in (match["beats"] or "").split():
        num, den = (int(x) for x in part.split("/"))
        if den == 0:
            raise AbcError(f"tempo Q:{value.strip()} divides by zero")
        beat += Fraction(num, den)
    qpm = float(int(match["bpm"]) * beat * 4)
    if not MIN_TEMPO_QPM <= qpm <= MAX_TEMPO_QPM:
        raise AbcError(
            f"tempo Q:{value.strip()} is {qpm:.4g} crotchets a minute; a playable tempo is "
            f"{MIN_TEMPO_QPM:.0f} to {MAX_TEMPO_QPM:.0f} (e.g. Q:1/4=120)"
        )
    return qpm


def _length(num: str | None, slash: str | None, den: str | None) -> Fraction:
    if len(num or "") > MAX_LENGTH_DIGITS or len(den or "") > MAX_LENGTH_DIGITS:
        raise _Unplayable(f"a length of more than {MAX_LENGTH_DIGITS} digits is no note length (a playable note "
                          f"lasts at most {MAX_NOTE_WHOLES} whole notes)")
    n = int(num) if num else 1
    if not slash:
        return Fraction(n)
    d = int(den) if den else 2 ** len(slash)
    if d == 0:
        raise _Unplayable("a note length divides by zero")
    return Fraction(n, d)


def _split_header(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].startswith("X:"):
        raise AbcError("a tune starts with an X: line")
    header: dict[str, str] = {}
    for i, raw in enumerate(lines):
        line = raw.split("%", 1)[0].rstrip()
        if not line.strip():
            continue
        match = _HEADER_FIELD.match(line)
        if not match:
            raise AbcError(f"line {i + 1} is not a header field before K: ({line[:30]!r})")
        header.setdefault(match["key"], match["value"].strip())
        if match["key"] == "K":
            return header, list(enumerate(lines[i + 1 :], start=i + 2))
    raise AbcError("no key (K:) line ends the header")


def parse(text: str) -> Tune:
    """Read one tune; raise :class:`AbcError` naming the first problem."""
    if not isinstance(text, str):
        raise AbcError(f"a tune is text, got {type(text).__name__}")
    if len(text) > MAX_TUNE_CHARS:
        raise AbcError(f"{len(text)} characters is far too long for a tune")
    try:
        header, body = _split_header(text.strip())
        if "M" not in header:
            raise AbcError("no meter (M:) in the header")
        meter = parse_meter(header["M"])
        unit = parse_unit(header["L"]) if "L" in header else (Fraction(1, 8) if meter >= Fraction(3, 4) else Fraction(1, 16))
        keysig = key_signature(header["K"])
        tempo = parse_tempo(header["Q"], unit) if "Q" in header else None
    except AbcError as err:
        err.part = "header"
        raise
    tempo = DEFAULT_TEMPO_QPM if tempo is None else tempo
    tune = Tune(header=header, meter=meter, unit=unit, tempo_qpm=tempo)
    state = _Reader(tune, keysig)
    for number, raw in body:
        line = raw.split("%", 1)[0].rstrip()
        if not line.strip():
            continue
        field_line = _BODY_FIELD.match(line)
        if field_line:
            state.field(field_line["key"], field_line["value"], number)
            continue
        state.line(line, number)
    state.finish()
    return tune


def _octave(letter: str, marks: str) -> int:
    """The octave number of a note (pitch = 12 * octave + semitone): ``C`` is 5 (MIDI 60,
    middle C), ``c`` 6; each ``'`` raises it, each ``,`` lowers it."""
    return (5 if letter.isupper() else 6) + marks.count("'") - marks.count(",")


def _scan(line: str, number: int) -> Iterator[re.Match[str]]:
    """The tokens of body line ``number``; :class:`AbcError` at the first character that is none."""
    pos = 0
    while pos < len(line):
        match = _TOKEN.match(line, pos)
        if not match or match.end() == pos:
            raise AbcError(f"line {number}, column {pos + 1}: unexpected {line[pos]!r} in {line[max(0, pos - 8):pos + 8]!r}")
        yield match
        pos = match.end()


class _Reader:
    """Walks the body's tokens, keeping time, bar accidentals, tuplets and broken rhythm."""

    def __init__(self, tune: Tune, keysig: dict[str, int]) -> None:
        self.tune, self.keysig = tune, keysig
        self.time = Fraction(0)
        self.bar_start = Fraction(0)
        self.bar_accidentals: dict[tuple[str, int], int] = {}
        self.tuplet_left, self.tuplet_ratio = 0, Fraction(1)
        self.broken: Fraction | None = None  # factor for the next note after > or <
        self.last: list[int] = []  # indices of the notes of the last note/chord
        self.last_len = Fraction(0)
        self.repeat_pending = False

    def field(self, key: str, value: str, number: int) -> None:
        try:
            if key == "K":
                self.keysig = key_signature(value)
            elif key == "M":
                self.tune.meter = parse_meter(value)
            elif key == "L":
                self.tune.unit = parse_unit(value)
            elif key == "Q":  # checked like the header's, but the header's tempo holds for the whole tune
                parse_tempo(value, self.tune.unit)
        except AbcError as err:
            raise AbcError(f"line {number}: {err}") from None

    def line(self, line: str, number: int) -> None:
        for match in _scan(line, number):
            try:
                self.token(match, number)
            except _Unplayable as err:
                raise AbcError(f"line {number}, column {match.start() + 1}: {err} in {match.group()[:20]!r}") from None

    def _pitch(self, acc: str | None, letter: str, octave: str) -> int:
        base = letter.upper()
        octave_number = _octave(letter, octave)
        key = (base, octave_number)
        if acc:
            self.bar_accidentals[key] = _ACC_SHIFT[acc]
        shift = self.bar_accidentals.get(key, self.keysig.get(base, 0))
        pitch = 12 * octave_number + _LETTER[base] + shift
        if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
            raise _Unplayable(f"note {acc or ''}{letter}{octave} (MIDI pitch {pitch}) is outside a piano's range, "
                              f"A,,,, (MIDI {PITCH_RANGE[0]}) to c\'\'\' (MIDI {PITCH_RANGE[1]})")
        return pitch

    def _check_length(self, length: Fraction) -> None:
        if length <= 0:
            raise _Unplayable("a note or rest of length 0 is not music")
        if length > MAX_NOTE_WHOLES:
            raise _Unplayable(f"a note or rest of {length} whole notes is longer than the {MAX_NOTE_WHOLES} "
                              f"whole notes a playable tune holds one")

    def _sound(self, pitches: list[int], length: Fraction) -> None:
        length *= self.tune.unit
        if self.tuplet_left:
            length *= self.tuplet_ratio
            self.tuplet_left -= 1
        if self.broken is not None:
            length *= self.broken
            self.broken = None
        self._check_length(length)
        self.last = []
        for pitch in pitches:
            self.last.append(len(self.tune.notes))
            self.tune.notes.append(Note(pitch, self.time, length))
        self.last_len = length
        self.time += length

    def _rest(self, length: Fraction) -> None:
        self._sound([], length)

    def token(self, m: re.Match[str], number: int) -> None:
        kind = m.lastgroup
        if kind in ("space", "decoration", "eol", "annotation", "slur", "tie"):
            return
        if kind == "field":
            key, value = m.group("field")[1:-1].split(":", 1)
            self.field(key, value, number)
        elif kind == "note":
            self._sound([self._pitch(m["acc"], m["letter"], m["oct"])], _length(m["num"], m["slash"], m["den"]))
        elif kind == "rest":
            self._rest(_length(m["rnum"], m["rslash"], m["rden"]))
        elif kind == "chord":
            inner = re.findall(_PITCH + r"(\d*(?:/+\d*)?)", m["chord"][1 : m["chord"].index("]")])
            if len(inner) > MAX_CHORD_NOTES:
                raise _Unplayable(f"a chord of {len(inner)} notes has more than {MAX_CHORD_NOTES}")
            first = re.fullmatch(_DUR, inner[0][3])
            length = _length(first["num"], first["slash"], first["den"]) if first else Fraction(1)
            length *= _length(m["cnum"], m["cslash"], m["cden"])
            self._sound([self._pitch(a or None, l, o) for a, l, o, _ in inner], length)
        elif kind == "grace":
            pass  # ornaments without time of their own
        elif kind == "tuplet":
            p = int(m["p"])
            q = int(m["q"]) if m["q"] else _TUPLET_Q.get(p, 2)
            self.tuplet_left = int(m["r"]) if m["r"] else p
            self.tuplet_ratio = Fraction(q, p)
        elif kind == "broken":
            if not self.last and self.last_len == 0:
                raise AbcError(f"line {number}: {m['broken']!r} needs a note before it")
            dots = len(m["broken"])
            longer, shorter = 2 - Fraction(1, 2**dots), Fraction(1, 2**dots)
            first, second = (longer, shorter) if m["broken"][0] == ">" else (shorter, longer)
            self._stretch_last(first)
            self.broken = second
        elif kind in ("bar", "ending"):
            self._bar(repeat=":" in m.group(kind) or any(c.isdigit() for c in m.group(kind)))

    def _stretch_last(self, factor: Fraction) -> None:
        new_len = self.last_len * factor
        self._check_length(new_len)
        for i in self.last:
            note = self.tune.notes[i]
            self.tune.notes[i] = Note(note.pitch, note.start, new_len)
        self.time += new_len - self.last_len
        self.last_len = new_len

    def _bar(self, repeat: bool) -> None:
        if self.time > self.bar_start:
            self.tune.bar_lengths.append(self.time - self.bar_start)
            self.tune.bar_at_repeat.append(repeat or self.repeat_pending)
            self.repeat_pending = False
        else:
            self.repeat_pending = self.repeat_pending or repeat
        if repeat and self.tune.bar_at_repeat:
            self.repeat_pending = True
        self.bar_start = self.time
        self.bar_accidentals = {}

    def finish(self) -> None:
        if self.broken is not None:
            raise AbcError("the tune ends in a broken rhythm (> or <) with no note after it")
        if self.time > self.bar_start:
            self.tune.bar_lengths.append(self.time - self.bar_start)
            self.tune.bar_at_repeat.append(True)


@dataclass(frozen=True)
class TuneCheck:
    """The verdict of :func:`check_tune`: ``valid``, and ``reason`` when it is not."""

    valid: bool
    reason: str = ""
    tune: Tune | None = None
    #: ``""`` for a valid tune, else one of :data:`FAILURE_KINDS`.
    kind: str = ""

    def __bool__(self) -> bool:
        return self.valid


#: What can be wrong with a text that is not a playable tune (:attr:`TuneCheck.kind`).
FAILURE_KINDS = {
    "header": "a broken header (no X:, meter or key; a line that is not a field)",
    "body": "a body the reader cannot read (a stray character, an unclosed chord)",
    "short": "too few notes or bars",
    "meter": "bars that do not fit the meter in the header",
}


def usual_bar(tune: Tune) -> Fraction:
    """The most common bar length of ``tune`` in units of its ``L:`` note length (so an
    8 for a bar of eight eighth notes); 0 for a tune without bars.

    >>> usual_bar(parse("X:1\\nM:C\\nL:1/8\\nK:G\\nGAB cBA|GAB cBA|GABc dedB|"))
    Fraction(6, 1)
    """
    if not tune.bar_lengths:
        return Fraction(0)
    lengths = [length for length in tune.bar_lengths if length > 0] or tune.bar_lengths
    return max(set(lengths), key=lengths.count) / tune.unit


def full_bar_share(tune: Tune) -> float:
    """Share of the inner bars (not the first or last, not touching a repeat or an
    ending, where pick-ups split a bar) that last exactly one bar of the meter."""
    inner = [length for i, (length, at_repeat) in enumerate(zip(tune.bar_lengths, tune.bar_at_repeat))
             if 0 < i < len(tune.bar_lengths) - 1 and not at_repeat]
    if not inner:
        return 0.0
    return sum(length == tune.meter for length in inner) / len(inner)


def check_tune(text: object) -> TuneCheck:
    """Decide whether ``text`` is a playable tune, and if not, say why.

    Playable: an ``X:`` line, a meter and a key in the header (a title is not needed to
    play a tune); a body that this reader reads to the end, within the limits of what
    anyone plays (a tempo of :data:`MIN_TEMPO_QPM` to :data:`MAX_TEMPO_QPM` crotchets a
    minute, no note or rest longer than :data:`MAX_NOTE_WHOLES` whole notes, pitches on
    a piano, chords of at most :data:`MAX_CHORD_NOTES` notes); at least :data:`MIN_NOTES`
    notes in :data:`MIN_BARS` bars; and at least :data:`MIN_FULL_BAR_SHARE` of the inner
    bars exactly one bar long (shuffled or random bodies fail here even when every
    character is legal ABC). Never raises. An invalid verdict's ``kind`` says which of
    :data:`FAILURE_KINDS` it is. :func:`utils.music.play` reads tunes with the same
    :func:`parse`, so a tune accepted here always plays, and what it refuses is refused
    here with the same reason.

    >>> check_tune("X:1\\nT:Reel\\nM:4/4\\nL:1/8\\nK:G\\n" + "GABc dedB|" * 6).valid
    True
    >>> check_tune("X:1\\nT:Reel\\nM:4/4\\nL:1/8\\nK:G\\n" + "GABc ded|" * 6).reason
    'only 0% of the inner bars are one full bar of 4/4 (a playable tune has at least 60%)'
    >>> check_tune("X:1\\nT:Reel\\nM:4/4\\nL:1/8\\nK:G\\n" + "GABc ded|" * 6).kind
    'meter'
    """
    try:
        tune = parse(text)  # type: ignore[arg-type]
    except AbcError as err:
        return TuneCheck(False, str(err), kind=err.part)
    except (ValueError, ZeroDivisionError, OverflowError, IndexError, KeyError) as err:  # pragma: no cover
        return TuneCheck(False, f"unreadable ({type(err).__name__})", kind="body")
    sounding = [n for n in tune.notes if n.duration > 0]
    if len(sounding) < MIN_NOTES:
        return TuneCheck(False, f"only {len(sounding)} notes (a playable tune has at least {MIN_NOTES})", tune, "short")
    if len(tune.bar_lengths) < MIN_BARS:
        return TuneCheck(False, f"only {len(tune.bar_lengths)} bars (a playable tune has at least {MIN_BARS})", tune,
                         "short")
    share = full_bar_share(tune)
    if share < MIN_FULL_BAR_SHARE:
        meter = tune.header.get("M", "").strip()
        return TuneCheck(
            False,
            f"only {share:.0%} of the inner bars are one full bar of {meter} "
            f"(a playable tune has at least {MIN_FULL_BAR_SHARE:.0%})",
            tune,
            "meter",
        )
    return TuneCheck(True, "", tune)


#: The kinds of fake tune :func:`corrupt` makes, to test :func:`check_tune` with.
FAKE_KINDS = ("random characters", "header + random body", "header + shuffled body",
              "header + shuffled tokens", "header only")


def header_and_body(text: str) -> tuple[str, str]:
    """Split a tune after its ``K:`` line.

    >>> header_and_body("X:1\\nK:G\\nabc|")
    ('X:1\\nK:G', 'abc|')
    """
    lines = text.strip().split("\n")
    end = next((i for i, line in enumerate(lines) if line.startswith("K:")), len(lines) - 1)
    return "\n".join(lines[: end + 1]), "\n".join(lines[end + 1 :])


def _tokens(body: str) -> list[str]:
    found = []
    for line in body.split("\n"):
        pos = 0
        while pos < len(line):
            match = _TOKEN.match(line, pos)
            end = match.end() if match and match.end() > pos else pos + 1
            found.append(line[pos:end])
            pos = end
    return found


def corrupt(text: str, how: str, rng: "np.random.Generator", alphabet: str) -> str:
    """A fake made from a real tune: ``how`` is one of :data:`FAKE_KINDS`.

    Random characters are drawn from ``alphabet`` (the corpus' characters); shuffled
    tokens keep every note, bar line and ornament of the tune legal ABC but in random
    order, which only the bar-structure test can catch.
    """
    header, body = header_and_body(text)
    chars = list(alphabet)
    if how == "random characters":
        return "".join(rng.choice(chars, size=len(text)))
    if how == "header + random body":
        return header + "\n" + "".join(rng.choice(chars, size=len(body)))
    if how == "header + shuffled body":
        return header + "\n" + "".join(rng.permutation(list(body)))
    if how == "header + shuffled tokens":
        tokens = [t for t in _tokens(body.replace("\n", " ")) if t.strip()]
        return header + "\n" + " ".join(rng.permutation(tokens)) if tokens else header
    if how == "header only":
        return header
    raise ValueError(f"unknown kind of fake {how!r}; choose from {FAKE_KINDS}")


def acceptance_rates(tunes: list[str], seed: int = 0) -> dict[str, float]:
    """Share of ``check_tune`` accepting the real tunes and each kind of fake made from them.

    The measure the notebook shows and the tests assert (real >= 99 %, fakes <= 5 %).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    alphabet = "".join(sorted(set("".join(tunes))))
    rates = {"real tunes": float(np.mean([check_tune(t).valid for t in tunes]))}
    for how in FAKE_KINDS:
        rates[how] = float(np.mean([check_tune(corrupt(t, how, rng, alphabet)).valid for t in tunes]))
    return rates


# Letter steps of each interval in semitones (a fourth is 5 semitones and 3 letters up).
_STEPS = {0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 5, 9: 5, 10: 6, 11: 6}
_ACCIDENTAL = {shift: acc for acc, shift in _ACC_SHIFT.items()}
_SCALE = "CDEFGAB"


def _letter_steps(semitones: int) -> int:
    octaves, rest = divmod(semitones, 12)
    return 7 * octaves + _STEPS[rest]


def _transpose_key(value: str, semitones: int) -> str:
    """A ``K:`` value with its tonic moved by ``semitones``, spelled a letter step away.

    >>> _transpose_key("D Major", 5), _transpose_key(" A Dorian", -5), _transpose_key("F", 5)
    ('G Major', ' E Dorian', 'Bb')
    """
    match = re.match(r"^(\s*)([A-G])([#b]?)(.*)$", value, re.S)
    if not match:
        raise AbcError(f"key K:{value} has no tonic to transpose")
    pad, letter, acc, rest = match.groups()
    index = _SCALE.index(letter) + _letter_steps(semitones)
    new_letter = _SCALE[index % 7]
    pitch = (_LETTER[letter] + {"#": 1, "b": -1, "": 0}[acc] + semitones) % 12
    shift = (pitch - _LETTER[new_letter] + 6) % 12 - 6
    if shift not in (-1, 0, 1):
        raise AbcError(f"K:{value} moved by {semitones} semitones needs a double accidental")
    new = pad + new_letter + {1: "#", -1: "b", 0: ""}[shift] + rest
    key_signature(new)  # raises for a key of more than 7 accidentals
    return new


def _transpose_note(acc: str | None, letter: str, octave: str, semitones: int) -> str:
    number = _octave(letter, octave)
    index = 7 * number + _SCALE.index(letter.upper()) + _letter_steps(semitones)
    new_number, new_letter = divmod(index, 7)
    letter_out = _SCALE[new_letter] if new_number <= 5 else _SCALE[new_letter].lower()
    marks = "," * (5 - new_number) if new_number < 5 else "'" * (new_number - 6)
    if not acc:  # the key signature (or the bar's accidental, itself transposed) applies
        return letter_out + marks
    pitch = 12 * number + _LETTER[letter.upper()] + _ACC_SHIFT[acc] + semitones
    shift = pitch - 12 * new_number - _LETTER[_SCALE[new_letter]]
    if shift not in _ACCIDENTAL:
        raise AbcError(f"note {acc}{letter}{octave} moved by {semitones} semitones needs a triple accidental")
    return _ACCIDENTAL[shift] + letter_out + marks


_NOTE_IN = re.compile(_PITCH)


def _transpose_line(line: str, semitones: int, number: int) -> str:
    out = []
    for match in _scan(line, number):
        token, kind = match.group(), match.lastgroup
        if kind in ("note", "chord", "grace"):
            token = _NOTE_IN.sub(lambda m: _transpose_note(m[1], m[2], m[3], semitones), token)
        elif kind == "field" and token.startswith("[K:"):
            token = "[K:" + _transpose_key(token[3:-1], semitones) + "]"
        out.append(token)
    return "".join(out)


def transpose(text: str, semitones: int) -> str:
    """The tune ``text`` moved up (or down, if negative) by ``semitones``: every note and
    every key, with the same mode, rhythm, bar lines and ornaments.

    Notes move by the interval's letter steps (a fourth: 5 semitones, 3 letters), so a
    tune in D major moved up a fourth is written in G major with the same accidentals
    relative to its key. Used to augment a small corpus: the same tunes in other keys.
    Raises :class:`AbcError` for text this reader cannot read, or a key or note that
    would need more accidentals than ABC has.

    >>> transpose("X:1\\nM:6/8\\nL:1/8\\nK:D Major\\nFAd =cBA|", 5)  # C natural in D: F natural in G
    'X:1\\nM:6/8\\nL:1/8\\nK:G Major\\nBdg =fed|'
    """
    lines = text.split("\n")
    out, in_body = [], False
    for number, raw in enumerate(lines, start=1):
        line, percent, comment = raw.partition("%")
        if not in_body or _BODY_FIELD.match(line):
            field_line = _HEADER_FIELD.match(line)
            if field_line and field_line["key"] == "K":
                line = "K:" + _transpose_key(field_line["value"], semitones)
                in_body = True
            out.append(line + percent + comment)
            continue
        out.append(_transpose_line(line, semitones, number) + percent + comment)
    if not in_body:
        raise AbcError("no key (K:) line ends the header")
    return "\n".join(out)
