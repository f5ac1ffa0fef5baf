"""Bach chorales as piano rolls, their sound, and the chapter built from them.

Loader: the first chords of BWV 269 (Riemenschneider no. 1, "Aus meines Herzens
Grunde") were read by hand from the MusicXML inside music21's ``bach/bwv269.mxl`` (each
part's first ``<note>``: step, octave, duration); the other loader checks build small
scores with music21 whose rolls are known by construction. The NLL is checked against a
value worked out by hand and against ``torch.nn.functional.binary_cross_entropy_with_logits``.

Audio: a rendered note is checked by its spectrum (numpy's FFT of the WAV that
fluidsynth wrote, read with the standard library's ``wave``), against the equal-tempered
frequency 440 * 2 ** ((midi - 69) / 12); a MIDI file written from a roll is read back
with music21 and compared with the notes written into the roll by hand.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import wave
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from music21 import converter, corpus as music21_corpus, note, stream

from rnnlab import audio
from rnnlab.corpora import chorales


# --- the chorales as piano rolls -------------------------------------------------


@pytest.fixture(scope="module")
def jsb():
    return chorales.load()


def score_of(parts):
    """A music21 score: ``parts`` maps a part name to (MIDI note or None for a rest,
    quarter length) pairs played one after the other."""
    score = stream.Score()
    for name, notes in parts.items():
        part = stream.Part()
        part.partName = name
        for midi, length in notes:
            part.append(note.Rest(quarterLength=length) if midi is None else note.Note(midi, quarterLength=length))
        score.insert(0, part)
    return score


def voices(soprano, alto=None, tenor=None, bass=None, **others):
    """Four voices (the lower ones default to fixed notes as long as the soprano)."""
    length = sum(q for _, q in soprano)
    return score_of({"Soprano": soprano, "Alto": alto or [(60, length)], "Tenor": tenor or [(55, length)],
                     "Bass": bass or [(48, length)], **others})


def test_every_roll_has_88_keys_of_zeros_and_ones_and_four_voices_at_most(jsb):
    assert len(jsb.pieces) > 350
    for path, roll in jsb.pieces.items():
        assert roll.ndim == 2 and roll.shape[1] == 88 and roll.dtype == np.uint8, (path, roll.shape)
        assert set(np.unique(roll)) <= {0, 1}, path
        assert roll.sum(axis=1).max() <= 4, f"{path}: more than four notes at a step of a four-voice chorale"


def test_the_first_two_chords_of_bwv269_are_those_of_the_score(jsb):
    # bwv269.xml, measure 0 (a one-quarter pickup, 3/4, G major): Soprano G4, Alto D4,
    # Tenor B3, Bass G2; measure 1, first beat: G4, D4, B3 and the bass up an octave, G3.
    roll = jsb.pieces["bach/bwv269.mxl"]
    assert (np.flatnonzero(roll[0]) + 21).tolist() == [43, 59, 62, 67]
    assert (np.flatnonzero(roll[1]) + 21).tolist() == [55, 59, 62, 67]


def music21_beats(score):
    """The MIDI notes sounding on each beat of a chorale's four voices, by music21's own
    offset query (not the loader's arithmetic): beats are the whole quarters of each
    measure from its barline; leading and trailing silent beats are dropped."""
    parts = [p for p in score.parts if (p.partName or "").startswith(chorales.VOICES)]
    flat = [p.flatten().notes.stream() for p in parts]
    instants = sorted({float(m.offset) + k for m in parts[0].getElementsByClass("Measure")
                       for k in range(int(m.duration.quarterLength))})
    beats = []
    for t in instants:
        sounding = set()
        for notes in flat:
            for n in notes.getElementsByOffset(t, mustBeginInSpan=False, includeElementsThatEndAtStart=False):
                if n.quarterLength > 0:
                    sounding.update(pitch.midi for pitch in n.pitches)
        beats.append(sorted(sounding))
    while not beats[0]:
        beats.pop(0)
    while not beats[-1]:
        beats.pop()
    return beats


@pytest.mark.parametrize("path", ["bach/bwv269.mxl", "bach/bwv253.mxl", "bach/bwv66.6.mxl", "bach/bwv371.mxl"])
def test_a_roll_holds_on_each_beat_the_notes_music21_says_sound_there(jsb, path):
    roll = jsb.pieces[path]
    beats = music21_beats(music21_corpus.parse(path))
    assert [(np.flatnonzero(row) + 21).tolist() for row in roll] == beats


def test_splits_are_disjoint_and_account_for_every_bach_file_of_music21(jsb):
    splits = {name: set(jsb.paths(name)) for name in chorales.SPLITS}
    assert not (splits["train"] & splits["valid"] or splits["train"] & splits["test"] or splits["valid"] & splits["test"])
    files = {f"bach/{p.name}" for p in music21_corpus.getComposer("bach") if p.suffix in (".mxl", ".xml", ".krn")}
    kept = set().union(*splits.values())
    assert kept | set(jsb.excluded) == files and not kept & set(jsb.excluded)
    sizes = {name: len(paths) / len(kept) for name, paths in splits.items()}
    assert abs(sizes["train"] - 0.6) < 0.08 and abs(sizes["valid"] - 0.2) < 0.06 and abs(sizes["test"] - 0.2) < 0.06, sizes


def test_no_tune_and_no_roll_is_in_two_splits(jsb):
    where_tune, where_roll = {}, {}
    for path, split in jsb.split.items():
        assert where_tune.setdefault(jsb.tunes[path], split) == split, f"tune of {path} is in two splits"
        key = jsb.pieces[path].tobytes()
        assert key not in where_roll, f"{path} has the same roll as another kept piece"
        where_roll[key] = split


def test_the_duplicates_music21_holds_are_removed(jsb):
    # bwv190.7-inst is bwv190.7 with its instrumental parts: the same four voices
    assert jsb.excluded["bach/bwv190.7.mxl"] == "duplicate of bach/bwv190.7-inst.mxl (identical piano roll)"
    assert "bach/bwv190.7-inst.mxl" in jsb.pieces


def test_load_is_deterministic_and_checks_its_digest(jsb, tmp_path):
    again = chorales.load()
    assert again.digest() == jsb.digest() and again.split == jsb.split
    for name in ("chorales.npz", "chorales.json"):
        shutil.copy(chorales.DATA / name, tmp_path / name)
    record = json.loads((tmp_path / "chorales.json").read_text())
    test_path = record["splits"]["test"].popitem()
    record["splits"]["train"].update([test_path])  # move one chorale from test to train
    (tmp_path / "chorales.json").write_text(json.dumps(record))
    with pytest.raises(chorales.CorpusError, match="does not match"):
        chorales.load(folder=tmp_path)


def test_a_transposed_harmonisation_is_the_same_tune_and_its_roll_moves_up(jsb):
    score = music21_corpus.parse("bach/bwv269.mxl")
    up = score.transpose(2)
    assert chorales.tune_name(up) == chorales.tune_name(score) == jsb.tunes["bach/bwv269.mxl"]
    roll, moved = chorales.chorale_roll(score), chorales.chorale_roll(up)
    assert (moved[:, 2:] == roll[:, :-2]).all() and not moved[:, :2].any()


def test_from_scores_keeps_identical_rolls_once_and_a_tune_in_one_split():
    melody = [(67, 1), (69, 1), (71, 1), (72, 1), (74, 2), (72, 1), (71, 1), (69, 2)]
    original = voices(melody)
    copy = voices(melody)
    transposed = voices([(m + 2, q) for m, q in melody], [(62, 10)], [(57, 10)], [(50, 10)])
    other = voices([(64, 2), (62, 2), (60, 4), (64, 2)])
    built = chorales.from_scores([("x/a", original), ("x/b", copy), ("x/c", transposed), ("x/d", other)])
    assert built.excluded == {"x/b": "duplicate of x/a (identical piano roll)"}
    assert set(built.pieces) == {"x/a", "x/c", "x/d"}
    assert built.tunes["x/a"] == built.tunes["x/c"] == "+2 +2 +1 +2 -2 -1 -2"
    assert built.split["x/a"] == built.split["x/c"] == chorales.split_of("+2 +2 +1 +2 -2 -1 -2")


def test_instrument_parts_are_ignored_and_resting_choirs_excluded():
    melody = [(67, 2), (69, 2), (71, 4)]
    plain = voices(melody)
    with_violin = voices(melody, Violin=[(100, 8)])
    assert (chorales.chorale_roll(with_violin) == chorales.chorale_roll(plain)).all()
    # two phrases of 8 quarters with the choir resting 4 quarters between them
    def phrase(midi):
        return [(midi, 8), (None, 4), (midi, 8)]
    resting = voices(melody + [(None, 4)] + melody, phrase(60), phrase(55), phrase(48))
    built = chorales.from_scores([("x/resting", resting)])
    assert built.excluded == {"x/resting": "voices silent at 20% of the steps (instrumental interludes)"}


def test_the_piano_keys_are_kept_to_the_edges_and_refused_beyond():
    edges = chorales.chorale_roll(voices([(108, 1), (72, 1)], bass=[(21, 2)]))
    assert edges[0, 0] == 1 and edges[0, 87] == 1
    for midi in (20, 109):
        with pytest.raises(chorales.KeyOutOfRangeError, match=f"MIDI note {midi} in part 'Soprano'"):
            chorales.chorale_roll(voices([(72, 1), (midi, 1)]))


def test_bad_input_gets_a_named_error():
    with pytest.raises(chorales.UnknownCollectionError, match="collection must be one of"):
        chorales.load("mozart")
    with pytest.raises(chorales.UnknownCollectionError):
        chorales.build("mozart")
    rests = {name: [(None, 4)] for name in chorales.VOICES}
    with pytest.raises(chorales.EmptyScoreError, match="no note sounds"):
        chorales.chorale_roll(score_of(rests))
    with pytest.raises(chorales.NotAChoraleError, match="Soprano"):
        chorales.chorale_roll(score_of({"Piano": [(60, 4)]}))
    with pytest.raises(ValueError, match="split must be one of"):
        chorales.load().paths("training")


def test_training_subsets_are_nested_and_of_the_asked_size(jsb):
    train = jsb.paths("train")
    subsets = [jsb.training_subset(f, seed=3) for f in (0.1, 0.25, 0.5, 1.0)]
    assert [len(s) for s in subsets] == [math.ceil(f * len(train)) for f in (0.1, 0.25, 0.5, 1.0)]
    for small, large in zip(subsets, subsets[1:]):
        assert set(small) < set(large)
    assert set(subsets[-1]) == set(train)


# --- the negative log-likelihood ---------------------------------------------------


def test_nll_per_step_on_a_hand_worked_case():
    # One step, 88 keys, every logit 0: p = 1/2 everywhere, so the step costs 88 ln 2.
    assert chorales.nll_per_step(torch.zeros(1, 88), torch.zeros(1, 88)).item() == pytest.approx(88 * math.log(2))
    # Two keys with p = sigmoid(ln 3) = 3/4: a sounding key costs -ln(3/4), a silent one
    # -ln(1/4); a step with both costs ln(16/3). A second step with logits 0 costs 2 ln 2;
    # the mean of the two steps is (ln(16/3) + 2 ln 2) / 2.
    logits = torch.tensor([[math.log(3), math.log(3)], [0.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = (math.log(16 / 3) + 2 * math.log(2)) / 2
    assert chorales.nll_per_step(logits, targets).item() == pytest.approx(expected)
    # masking the second step leaves the first alone
    mask = torch.tensor([1.0, 0.0])
    assert chorales.nll_per_step(logits, targets, mask).item() == pytest.approx(math.log(16 / 3))


def test_nll_per_step_is_binary_cross_entropy_summed_over_keys_per_real_step():
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(7, 5, 88, generator=generator, dtype=torch.float64)
    targets = (torch.rand(7, 5, 88, generator=generator) < 0.05).double()
    mask = torch.ones(7, 5, dtype=torch.float64)
    mask[4:, 2] = 0
    mask[1:, 3] = 0
    reference = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
    expected = (reference * mask).sum() / mask.sum()
    assert chorales.nll_per_step(logits, targets, mask).item() == pytest.approx(expected.item(), rel=1e-12)


def test_next_step_batch_predicts_every_step_from_the_one_before():
    short = np.eye(88, dtype=np.uint8)[[3, 5]]
    long = np.eye(88, dtype=np.uint8)[[7, 8, 9]]
    batch = chorales.next_step_batch([short, long])
    assert batch.inputs.shape == batch.targets.shape == (3, 2, 88) and batch.mask.shape == (3, 2)
    assert batch.mask.tolist() == [[True, True], [True, True], [False, True]]
    assert not batch.inputs[0].any()
    assert batch.inputs[1:, 1].argmax(-1).tolist() == [7, 8] and batch.targets[:, 1].argmax(-1).tolist() == [7, 8, 9]
    assert batch.targets[:2, 0].argmax(-1).tolist() == [3, 5] and not batch.targets[2, 0].any()


def test_a_window_starts_from_the_chord_before_it():
    roll = np.eye(88, dtype=np.uint8)[[10, 11, 12, 13, 14]]
    batch = chorales.next_step_batch([roll[:4]], starts=[2])   # steps 2 and 3
    assert batch.inputs[:, 0].argmax(-1).tolist() == [11, 12]
    assert batch.targets[:, 0].argmax(-1).tolist() == [12, 13]
    with pytest.raises(ValueError, match="starts must give one step inside each roll"):
        chorales.next_step_batch([roll], starts=[5])


def test_next_step_task_cuts_long_rolls_to_windows_and_keeps_short_ones_whole():
    long = np.eye(88, dtype=np.uint8)[np.arange(60) % 88]    # key t at step t
    short = np.eye(88, dtype=np.uint8)[[70, 71, 72]]
    task = chorales.next_step_task([long, short], max_steps=8)
    seen_starts = set()
    for seed in range(20):
        batch = task.sample(2, seed=seed)
        assert batch.inputs.shape[0] == 8
        for n in range(2):
            targets = batch.targets[batch.mask[:, n], n].argmax(-1)
            if targets[0] >= 70:                                  # the short roll, whole
                assert targets.tolist() == [70, 71, 72] and not batch.inputs[0, n].any()
            else:                                                 # a window of the long one
                start = int(targets[0])
                seen_starts.add(start)
                assert targets.tolist() == list(range(start, start + 8))
                assert (batch.inputs[0, n].argmax() == start - 1) if start else not batch.inputs[0, n].any()
    assert len(seen_starts) > 5, f"windows should start at random places, got {sorted(seen_starts)}"


@pytest.mark.slow
def test_the_shipped_rolls_are_what_music21_gives_today(jsb):
    rebuilt = chorales.build()
    assert rebuilt.excluded == jsb.excluded
    assert rebuilt.digest() == jsb.digest(), "rerun `python tools/make_chorales.py` and commit its output"


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


# --- the chapter, built and in the browser ------------------------------------------


def chapter_html() -> str:
    from test_book import page_of

    path = page_of("book/chorales")
    if not path.exists():
        pytest.fail(f"{path} was not built: run `make book` first (`make test` does)")
    return path.read_text()


@pytest.mark.book
@pytest.mark.slow
def test_the_built_chapter_has_its_figures_tables_verdicts_and_sound():
    page = chapter_html()
    figures = re.findall(r'<img [^>]*src="[^"]+\.(?:png|svg)"', page)
    assert len(figures) >= 4, f"expected the roll, the learning curves, the data-size plot and the continuations, got {len(figures)} images"
    sounds = re.findall(r'<audio controls[^>]*src="data:audio/ogg;base64,', page)
    assert len(sounds) == 5, f"expected 5 audio elements (BWV 269, Bach's 24 steps, three cells), got {len(sounds)}"
    for published in ("8.54", "8.67", "9.10"):  # Chung et al., Table 2, JSB Chorales test
        assert f"<td>{published}</td>" in page, f"Chung et al.'s {published} is missing from the table"
    verdicts = re.findall(r"<td>(supported|not shown|contradicted|untested)</td>", page)
    assert len(verdicts) == 5, f"expected five verdicts in the table, got {verdicts}"
    outputs = re.sub(r'<div class="highlight[^"]*"><pre>.*?</pre></div>', "", page, flags=re.S)  # code left out
    assert not re.search(r">\s*-?nan\b", outputs, flags=re.I), "a number on the page is NaN"


@pytest.mark.browser
@pytest.mark.slow
def test_the_chapter_plays_its_audio_offline_in_chromium():
    from test_book import browser_context, check_page, page_of

    chapter_html()
    path = page_of("book/chorales")
    with browser_context() as context:
        problems = check_page(context, path, True, Path("test-artifacts") / "chorales-check.png")
        page = context.new_page()
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri(), wait_until="load")
        # Every <audio>: metadata decoded (a finite duration), then a muted play() that
        # advances the clock. Muted, because headless chromium refuses sound without a
        # user's gesture; the decoding is the same.
        report = page.evaluate("""async () => Promise.all(
            Array.from(document.querySelectorAll('audio')).map(async (a) => {
                if (a.readyState < 1) {
                    await new Promise((ok, fail) => {
                        a.addEventListener('loadedmetadata', ok, {once: true});
                        a.addEventListener('error', () => fail(a.error && a.error.message), {once: true});
                        a.load();
                    });
                }
                a.muted = true;
                await a.play();
                const started = Date.now();          // the clock moves: it plays
                while (a.currentTime === 0 && Date.now() - started < 20000) {
                    await new Promise(ok => setTimeout(ok, 50));
                }
                const played = a.currentTime;
                a.pause();
                return {duration: a.duration, played: played};
            }))""")
        page.close()
    assert not problems, "\n".join(problems)
    assert len(report) == 5, report
    for element in report:
        assert math.isfinite(element["duration"]) and 5 < element["duration"] < 60, report
        assert element["played"] > 0, f"an audio element did not play: {report}"
    outside = [url for url in requests if not url.startswith(("file://", "data:"))]
    assert not outside, f"the page made network requests: {outside}"
