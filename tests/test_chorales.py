"""Bach chorales as piano rolls, their sound, and the chapter built from them.

Audio: a rendered note is checked by its spectrum (numpy's FFT of the WAV that
fluidsynth wrote, read with the standard library's ``wave``), against the equal-tempered
frequency 440 * 2 ** ((midi - 69) / 12); a MIDI file written from a roll is read back
with music21 and compared with the notes written into the roll by hand.
"""

from __future__ import annotations

import base64
import re
import wave
from html.parser import HTMLParser

import numpy as np
import pytest
from music21 import converter

from rnnlab import audio


# --- audio ---------------------------------------------------------------------


def read_wav(path):
    """(samples as float mono, sample rate) of a 16-bit PCM WAV file."""
    with wave.open(str(path)) as file:
        rate, channels = file.getframerate(), file.getnchannels()
        samples = np.frombuffer(file.readframes(file.getnframes()), dtype=np.int16)
    return samples.reshape(-1, channels).mean(axis=1), rate


def one_note(key, steps=2):
    """An 88-key roll holding MIDI note ``key`` for ``steps`` steps."""
    roll = np.zeros((steps, 88), dtype=np.int8)
    roll[:, key - 21] = 1
    return roll


@pytest.mark.parametrize("key", [57, 69, 76])
def test_a_rendered_note_peaks_at_its_equal_tempered_frequency(tmp_path, key):
    # General MIDI's flute (program 73): its fundamental is its strongest partial (a
    # piano's E5 is loudest an octave up, at its second harmonic).
    path = audio.render_piano_roll(one_note(key), tmp_path / "note.wav", step_seconds=0.5,
                                   program=73, reverb=False)
    samples, rate = read_wav(path)
    held = samples[int(0.05 * rate):int(0.95 * rate)]  # inside the note, after the attack
    spectrum = np.abs(np.fft.rfft(held * np.hanning(len(held))))
    frequencies = np.fft.rfftfreq(len(held), 1 / rate)
    expected = 440.0 * 2 ** ((key - 69) / 12)
    peak = frequencies[spectrum.argmax()]
    cents = 1200 * np.log2(peak / expected)
    # within a quarter of a semitone: the neighbouring notes are 100 cents away
    assert abs(cents) < 25, (
        f"MIDI note {key} should peak at {expected:.1f} Hz, the spectrum peaks at {peak:.1f} Hz "
        f"({cents:+.0f} cents)")


def test_rendered_audio_lasts_the_roll_plus_one_step_and_the_release(tmp_path):
    steps, step_seconds = 6, 0.25
    roll = one_note(64, steps)
    samples, rate = read_wav(audio.render_piano_roll(roll, tmp_path / "a.wav", step_seconds=step_seconds))
    seconds = len(samples) / rate
    music = (steps + 1) * step_seconds  # music21 ends each track one quarter after its last event
    assert music <= seconds <= music + 3.0, f"expected {music} s plus a release of at most 3 s, got {seconds:.3f} s"
    # the note sounds in the middle of the roll; after the release only dither is left
    middle = np.abs(samples[int(0.5 * steps * step_seconds * rate) + np.arange(-400, 400)]).max()
    end = np.abs(samples[-int(0.1 * rate):]).max()
    assert end <= 2 and middle > 50 * max(end, 1), f"peak amplitude {middle} mid-roll, {end} at the end"


def test_a_silent_roll_renders_silence_of_its_length(tmp_path):
    samples, rate = read_wav(audio.render_piano_roll(np.zeros((4, 88)), tmp_path / "s.wav", step_seconds=0.5))
    assert len(samples) / rate == pytest.approx(2.5, abs=0.05)
    assert np.abs(samples).max() <= 2, "a silent roll should render as silence (up to 1-bit dither)"


def test_piano_roll_to_midi_holds_runs_of_steps_as_one_note(tmp_path):
    roll = np.zeros((6, 88), dtype=bool)
    roll[0:3, 60 - 21] = True    # C4 held three steps
    roll[4:6, 60 - 21] = True    # C4 again, two steps, after a silent step
    roll[1:2, 67 - 21] = True    # G4 for one step
    path = audio.piano_roll_to_midi(roll, tmp_path / "r.mid", step_seconds=0.5)
    notes = sorted((float(n.offset), float(n.quarterLength), n.pitch.midi)
                   for n in converter.parse(path).flatten().notes)
    assert notes == [(0.0, 3.0, 60), (1.0, 1.0, 67), (4.0, 2.0, 60)], notes


class _AudioElements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag == "audio":
            self.found.append(dict(attrs))


@pytest.mark.parametrize("suffix, mime", [(".oga", "audio/ogg"), (".flac", "audio/flac"), (".wav", "audio/wav")])
def test_audio_html_embeds_the_file_in_a_controls_element(tmp_path, suffix, mime):
    path = audio.render_piano_roll(one_note(69), tmp_path / f"a{suffix}")
    parser = _AudioElements()
    parser.feed(audio.audio_html(path, title="A4 & more"))
    (element,) = parser.found
    assert "controls" in element and element["title"] == "A4 & more"
    match = re.fullmatch(r"data:([\w/]+);base64,(.+)", element["src"])
    assert match and match.group(1) == mime, element["src"][:40]
    assert base64.b64decode(match.group(2)) == path.read_bytes()


def test_missing_fluidsynth_is_named(tmp_path, monkeypatch):
    midi_path = audio.piano_roll_to_midi(one_note(69), tmp_path / "a.mid")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(audio.AudioToolMissing, match="fluidsynth is not installed"):
        audio.render_midi(midi_path, tmp_path / "a.wav")


def test_missing_soundfont_is_named(tmp_path):
    midi_path = audio.piano_roll_to_midi(one_note(69), tmp_path / "a.mid")
    with pytest.raises(audio.AudioToolMissing, match="nothing.sf2"):
        audio.render_midi(midi_path, tmp_path / "a.wav", soundfont=tmp_path / "nothing.sf2")


@pytest.mark.parametrize("roll, lowest_key, error, words", [
    (np.full((2, 88), 0.5), 21, ValueError, "only 0 and 1"),
    (np.zeros(88), 21, ValueError, "2-D"),
    (np.zeros((0, 88)), 21, ValueError, "at least one step"),
    (np.zeros((2, 88)), 60, ValueError, "MIDI notes run from 0 to 127"),
    ([[0, 1]], 21, TypeError, "numpy array or torch tensor"),
])
def test_bad_rolls_are_refused_with_the_reason(tmp_path, roll, lowest_key, error, words):
    with pytest.raises(error, match=words):
        audio.piano_roll_to_midi(roll, tmp_path / "a.mid", lowest_key=lowest_key)


def test_bad_render_arguments_are_refused(tmp_path):
    midi_path = audio.piano_roll_to_midi(one_note(69), tmp_path / "a.mid")
    with pytest.raises(ValueError, match="out_path must end in one of"):
        audio.render_midi(midi_path, tmp_path / "a.mp3")
    with pytest.raises(FileNotFoundError, match="midi_path"):
        audio.render_midi(tmp_path / "none.mid", tmp_path / "a.wav")
    with pytest.raises(FileNotFoundError, match="path"):
        audio.audio_html(tmp_path / "none.oga")
