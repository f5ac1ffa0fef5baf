"""The folk-tune chapter's pieces: the ABC corpus, bits per character, sampling, packing,
the char_lm assignment graded by the hardened command, and the built page in a browser.

Oracles: the text of music21's own ABC files read by eye (a known tune's header and first
bar), ``torch.nn.functional.cross_entropy`` and hand-worked cases for bits per character,
the tunes scored one by one for the packed batch, and the real ``python -m rnnlab.grading``
command for the assignment. The browser check reads ``_build/html`` (``make book``).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.corpora import abc
from rnnlab.grading.checks import cases as C
from rnnlab.grading.checks import hidden as H
from rnnlab.grading.checks import language_model as L
from rnnlab.grading.checks import mistakes as M
from rnnlab.grading.checks.mistakes import singles_then_pairs

sys.path.insert(0, str(Path(__file__).parent))
from exercise_mistakes import Submission  # noqa: E402
from exercise_mistakes import char_lm as built  # noqa: E402
from journeys.servers import venv_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FOLK_PAGE = ROOT / "_build" / "html" / "book" / "folk.html"


@pytest.fixture(scope="module")
def corpus():
    return abc.load_tunes()


# --- the corpus ---------------------------------------------------------------------------


def test_splits_are_disjoint_by_tune_and_cover_every_collection(corpus):
    keys = {split: {abc._dedup_key(t.text) for t in corpus.split(split)} for split in ("train", "valid", "test")}
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]
    sizes = {split: len(corpus.split(split)) for split in keys}
    assert sizes["train"] > 9000 and 300 < sizes["valid"] < 900 and 300 < sizes["test"] < 900, sizes
    for split in keys:
        assert {t.collection for t in corpus.split(split)} == set(abc.COLLECTIONS), split


def test_loading_is_deterministic(corpus):
    assert abc.load_tunes("ryansMammoth") == abc.load_tunes("ryansMammoth")
    ryans = abc.load_tunes("ryansMammoth")
    for split in ("train", "valid", "test"):
        assert {t.text for t in ryans.split(split)} <= {t.text for t in corpus.split(split)}, split


def test_a_tunes_split_depends_on_its_text_only(corpus):
    # So the split cannot change with the order of files or collections, and the same
    # tune can never land in two splits.
    for split in ("train", "valid", "test"):
        for tune in corpus.split(split):
            assert abc._split_of(abc._dedup_key(tune.text), 0.05, 0.05) == split


def test_a_known_tune_keeps_its_header_and_first_bar(corpus):
    # O'Neill's Music of Ireland no. 1 in music21's oneills1850/0001-0050.abc reads:
    # X: 1 / T: The Enchanted Valley / M: 2/4 / L: 1/16 / B: ... / N: ... / Z: ... / K:Gm
    # G3-A (Bcd=e) | f4 (g2dB) | ...
    tune = next(t for split in ("train", "valid", "test") for t in corpus.split(split)
                if t.source == "oneills1850/0001-0050.abc" and t.number == 1)
    assert tune.header == "M:2/4\nL:1/16\nK:Gm\n"
    assert tune.body.startswith("G3-A (Bcd=e) |")
    assert "Enchanted" not in tune.text and "Paap" not in tune.text


def test_only_the_musical_header_lines_are_kept(corpus):
    for tune in corpus.train[::50] + corpus.valid + corpus.test:
        lines = tune.text.splitlines()
        assert [line[:2] for line in lines[:3]] == ["M:", "L:", "K:"], tune
        fields = {line[0] for line in lines[3:] if len(line) > 1 and line[1] == ":" and line[0].isalpha()}
        assert fields <= {"M", "L", "K"}, (tune.source, tune.number, fields)
        assert tune.text.endswith("\n") and "\n\n" not in tune.text and "%" not in tune.text


def test_clean_tune_keeps_music_and_drops_the_rest():
    raw = ["X: 7", "T: A Title", "C: Someone", "M:6/8", "N: a note", "L:1/8", "Z: transcriber",
           "K:D % the key", "A|dfa afd|e2f g2e|", "w: some lyrics", "P:B", "K:G", "B2d g3||", "", "free text after"]
    assert abc.clean_tune(raw) == "M:6/8\nL:1/8\nK:D\nA|dfa afd|e2f g2e|\nK:G\nB2d g3||\n"


@pytest.mark.parametrize("meter,length", [("2/4", "1/16"), ("6/8", "1/8"), ("C", "1/8"), ("3/4", "1/8")])
def test_a_missing_unit_length_comes_from_the_meter_as_the_abc_standard_says(meter, length):
    # ABC 2.1: with no L: field the unit note length is 1/16 when the meter is below 0.75, else 1/8.
    assert abc.clean_tune(["X:1", f"M:{meter}", "K:C", "CDEF|"]).splitlines()[1] == f"L:{length}"


@pytest.mark.parametrize("lines,reason", [
    (["X:1", "M:2/4", "L:1/8"], "no K: line"),
    (["X:1", "M:2/4", "L:1/8", "K:G"], "no body"),
    (["X:1", "L:1/8", "K:G", "GABc|"], "no M: line"),
    (["X:1", "M:2/4", "GABc|", "K:G", "GABc|"], "music before the K: line"),
    (["X:1", "M:2/4", "M:3/4", "L:1/8", "K:G", "GABc|"], "two M: lines in the header"),
    (["X:1", "M:2/4", "L:1/8", "K:G", "z4|x4|"], "no note"),
])
def test_malformed_tunes_are_refused_with_a_reason(lines, reason):
    with pytest.raises(abc.MalformedTune) as refused:
        abc.clean_tune(lines)
    assert refused.value.reason == reason


def test_malformed_tunes_are_skipped_and_counted_not_raised(tmp_path, monkeypatch):
    path = tmp_path / "mixed.abc"
    path.write_text("X:1\nT:good\nM:2/4\nL:1/8\nK:G\nGABc|d2d2|\n\n"
                    "X:2\nT:no key\nM:2/4\nL:1/8\n\n"
                    "X:3\nT:good again\nM:3/4\nL:1/8\nK:D\nd2 f2 a2|\n\n"
                    "X:4\nT:the first one again\nM:2/4\nL:1/8\nK:G\nGABc | d2d2 |\n", encoding="utf-8")
    monkeypatch.setattr(abc, "collection_paths", lambda collection: [path])
    loaded = abc.load_tunes(("oneills1850",), min_count=1)
    assert loaded.skipped == {"no K: line": 1}
    assert loaded.duplicates == 1
    assert sum(len(loaded.split(s)) for s in ("train", "valid", "test")) == 2


def test_vocabulary_maps_unknown_characters_to_its_replacement_symbol(corpus):
    vocabulary = corpus.vocabulary
    assert vocabulary.symbols[0] == abc.UNKNOWN and len(vocabulary) == len(set(vocabulary.symbols))
    text = corpus.valid[0].text
    assert vocabulary.decode(vocabulary.encode(text)) == "".join(c if c in vocabulary else abc.UNKNOWN for c in text)
    assert vocabulary.decode(vocabulary.encode("ABC\u00e9")) == "ABC" + abc.UNKNOWN
    counts = {}
    for tune in corpus.train:
        for c in tune.text:
            counts[c] = counts.get(c, 0) + 1
    assert set(vocabulary.symbols[1:]) == {c for c, n in counts.items() if n >= 10}


@pytest.mark.parametrize("call,message", [
    (lambda: abc.load_tunes("folk"), "collection must be one of"),
    (lambda: abc.load_tunes(valid_fraction=0.7), "valid_fraction must be a number in (0, 0.5)"),
    (lambda: abc.load_tunes((), test_fraction=0.1), "collections must name at least one"),
    (lambda: abc.CharVocabulary("ab").decode([0, 5]), "indices must lie in [0, 3)"),
    (lambda: abc.CharVocabulary("ab").encode(3), "text must be a str"),
    (lambda: abc.CharVocabulary.from_texts(["ab"], min_count=0), "min_count must be a positive int"),
])
def test_bad_arguments_get_errors_that_name_them(call, message):
    with pytest.raises((ValueError, TypeError), match=None) as failure:
        call()
    assert message in str(failure.value)


# --- bits per character ---------------------------------------------------------------------


def test_bits_per_char_on_a_hand_worked_case():
    # Two sequences of three characters, V = 4. Row 0 reads 0, 1, 2: the logits after reading 0
    # are uniform (2 bits for the 1 that follows), after reading 1 they give the next character
    # (2) probability e^ln3 / (e^ln3 + 3) = 1/2 (1 bit). Row 1 reads 3, 3, 0 with uniform
    # logits everywhere: 2 bits twice. Mean: (2 + 1 + 2 + 2) / 4 = 1.75 bits.
    logits = torch.zeros(3, 2, 4, dtype=torch.float64)
    logits[1, 0, 2] = math.log(3.0)
    targets = torch.tensor([[0, 3], [1, 3], [2, 0]])
    assert L.reference_bits_per_char(logits, targets) == pytest.approx(1.75, abs=1e-12)
    assert M.bits_per_char(logits.numpy(), targets.numpy()) == pytest.approx(1.75, abs=1e-12)
    assert M.bits_per_char(logits.numpy(), targets.numpy(), natural_log=True) == pytest.approx(
        1.75 * math.log(2), abs=1e-12)


@pytest.mark.parametrize("case", L.BITS_VISIBLE + H.BITS_HIDDEN, ids=str)
def test_bits_per_char_agrees_with_torch_cross_entropy(case):
    logits, targets = case.draw()
    nats = F.cross_entropy(torch.from_numpy(logits[:-1]).reshape(-1, case.vocabulary),
                           torch.from_numpy(targets[1:]).reshape(-1)).item()
    assert M.bits_per_char(logits, targets) == pytest.approx(nats / math.log(2), rel=1e-10)
    assert L.reference_bits_per_char(logits, targets) == pytest.approx(nats / math.log(2), rel=1e-10)


def message_of(check, answer):
    with pytest.raises(AssertionError) as failure:
        check(answer, hidden=True)
    return str(failure.value)


@pytest.mark.parametrize("mistake", M.BITS_MISTAKES, ids=lambda m: m.name)
def test_every_bits_per_char_mistake_is_named(mistake):
    answer = lambda logits, targets: M.bits_per_char(  # noqa: E731
        logits.double().numpy(), targets.numpy(), **mistake.flags)
    assert mistake.message in message_of(L.check_bits_per_char, answer)


def test_two_bits_per_char_mistakes_at_once_are_named_together():
    pair = next(m for m in singles_then_pairs(M.BITS_MISTAKES) if m.name == "natural_log+targets_not_shifted")
    answer = lambda logits, targets: M.bits_per_char(  # noqa: E731
        logits.double().numpy(), targets.numpy(), **pair.flags)
    message = message_of(L.check_bits_per_char, answer)
    assert "the value is in nats" in message and "not shifted by one" in message


# --- sampling ---------------------------------------------------------------------------------


def test_the_test_model_is_a_recurrent_model_read_in_pieces_or_at_once():
    model, prefix = L.SAMPLE_VISIBLE[0].draw()
    whole, state = model(prefix, None)
    first, middle = model(prefix[:2], None)
    rest, end = model(prefix[2:], middle)
    assert torch.equal(torch.cat([first, rest]), whole) and torch.equal(end, state)
    with pytest.raises(ValueError, match=r"shape \(T, B\)"):
        model(prefix[0], None)


def test_sampling_is_determined_by_the_generator_and_by_nothing_else():
    model, prefix = L.SAMPLE_VISIBLE[1].draw()
    torch.manual_seed(1)
    one = L.reference_sample(model, prefix, 1.0, torch.Generator().manual_seed(7), 30)
    torch.manual_seed(2)
    two = L.reference_sample(model, prefix, 1.0, torch.Generator().manual_seed(7), 30)
    other = L.reference_sample(model, prefix, 1.0, torch.Generator().manual_seed(8), 30)
    assert torch.equal(one, two) and not torch.equal(one, other)
    assert one.shape == (30, prefix.shape[1]) and one.dtype == torch.int64


def test_sample_frequencies_follow_softmax_of_logits_over_temperature():
    # Oracle: the exact probabilities of the test model after the prefix, for the first draw.
    case = C.SampleCase(seed=5, prefix_length=3, batch=4000, vocabulary=4, temperature=0.5, steps=1)
    model, prefix = case.draw()
    drawn = L.reference_sample(model, prefix, case.temperature, torch.Generator().manual_seed(0), 1)[0]
    table = model.table.double()
    for key, last in {(int(a), int(b)) for a, b in zip(prefix[0], prefix[-1])}:
        where = (prefix[0] == key) & (prefix[-1] == last)
        expected = torch.softmax(table[key, last] / case.temperature, -1)
        observed = torch.bincount(drawn[where], minlength=4).double() / where.sum()
        tolerance = 5 * torch.sqrt(expected * (1 - expected) / where.sum())
        assert torch.all((observed - expected).abs() <= tolerance + 1e-9), (key, last, observed, expected)


def gumbel_sample(model, prefix, temperature, generator, steps):
    """A correct sampler that draws differently from torch.multinomial (the Gumbel-max trick)."""
    logits, state = model(prefix, None)
    drawn = []
    for _ in range(steps):
        u = torch.rand(logits[-1].shape, generator=generator)
        drawn.append((logits[-1] / temperature - torch.log(-torch.log(u))).argmax(-1).view(1, -1))
        logits, state = model(drawn[-1], state)
    return torch.cat(drawn)


@pytest.mark.parametrize("sampler", [L.reference_sample, gumbel_sample], ids=["multinomial", "gumbel"])
def test_correct_samplers_pass_the_check_whatever_their_seed(sampler, monkeypatch):
    # The check's cases fix the generator seeds; here they move, to show that a correct
    # sampler passes for other draws too (the check is statistical).
    for shift in (7, 19):
        cases = tuple(type(c)(**{**c.__dict__, "seed": c.seed + shift}) for c in L.SAMPLE_VISIBLE + H.SAMPLE_HIDDEN)
        monkeypatch.setattr(L, "SAMPLE_VISIBLE", cases[:2])
        monkeypatch.setattr(H, "SAMPLE_HIDDEN", cases[2:])
        L.check_sample(sampler, hidden=True)


def mistaken_sampler(mistake):
    """A sampler that makes one usual mistake."""
    def sample(model, prefix, temperature, generator, steps):
        start = prefix[-1:] if mistake == "prefix_not_fed" else prefix
        logits, state = model(start, None)
        last = prefix[-1:]
        drawn = []
        for _ in range(steps):
            if mistake == "temperature_after_softmax":
                probabilities = torch.softmax(logits[-1], -1) / temperature
            elif mistake == "temperature_multiplied":
                probabilities = torch.softmax(logits[-1] * temperature, -1)
            else:
                probabilities = torch.softmax(logits[-1] / temperature, -1)
            if mistake == "greedy":
                nxt = probabilities.argmax(-1).view(1, -1)
            elif mistake == "seed_ignored":
                nxt = torch.multinomial(probabilities, 1).view(1, -1)
            elif mistake == "generator_unused":
                nxt = torch.multinomial(probabilities, 1, generator=torch.Generator().manual_seed(0)).view(1, -1)
            else:
                nxt = torch.multinomial(probabilities, 1, generator=generator).view(1, -1)
            drawn.append(nxt)
            if mistake == "samples_not_fed_back":
                logits, state = model(last, state)
            elif mistake == "state_not_carried":
                logits, state = model(nxt, None)
            else:
                logits, state = model(nxt, state)
        return torch.cat(drawn)
    return sample


@pytest.mark.parametrize("mistake", M.SAMPLE_MISTAKES, ids=lambda m: m.name)
def test_every_sampling_mistake_is_named(mistake):
    assert mistake.message in message_of(L.check_sample, mistaken_sampler(mistake.name))


@pytest.mark.parametrize("answer,phrase", [
    (lambda m, p, t, g, s: L.reference_sample(m, p, t, g, s + 1), "expected (40, 50)"),
    (lambda m, p, t, g, s: torch.cat([p, L.reference_sample(m, p, t, g, s)]), "It holds the prefix too"),
    (lambda m, p, t, g, s: L.reference_sample(m, p, t, g, s).T, "It looks transposed"),
    (lambda m, p, t, g, s: L.reference_sample(m, p[:, 0], t, g, s), "the model reads x of shape (T, B)"),
    (lambda m, p, t, g, s: L.reference_sample(m, p, t, g, s) + 0.5, "not whole numbers"),
], ids=("one_too_many", "prefix_returned", "transposed", "one_dimensional_prefix", "not_integers"))
def test_unreadable_samples_and_errors_become_messages(answer, phrase):
    assert phrase in message_of(L.check_sample, answer)


# --- packing -------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_class", [rnnlab.GRU, rnnlab.LSTM], ids=["GRU", "LSTM"])
def test_a_packed_batch_of_tunes_gives_the_loss_of_the_tunes_one_by_one(corpus, layer_class):
    # The chapter's recipe: pad, pack, unpack, mask the padded targets. Oracle: each tune alone.
    vocabulary = corpus.vocabulary
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(len(vocabulary), 8, dtype=torch.float64)
    layer = layer_class(8, 12, dtype=torch.float64)
    readout = torch.nn.Linear(12, len(vocabulary), dtype=torch.float64)
    tunes = [torch.from_numpy(vocabulary.encode("\n" + t.text + "\n")) for t in corpus.test[:12]]
    with torch.no_grad():
        alone = torch.tensor([L.reference_bits_per_char(readout(layer(embedding(t[:, None]))[0]), t[:, None])
                              for t in tunes], dtype=torch.float64)
        lengths = torch.tensor([len(t) for t in tunes])
        padded = torch.nn.utils.rnn.pad_sequence(tunes)
        packed = torch.nn.utils.rnn.pack_padded_sequence(embedding(padded), lengths, enforce_sorted=False)
        output, _ = torch.nn.utils.rnn.pad_packed_sequence(layer(packed)[0], total_length=len(padded))
        nats = F.cross_entropy(readout(output)[:-1].transpose(1, 2), padded[1:], reduction="none")
        real = torch.arange(1, len(padded))[:, None] < lengths[None, :]
        batched = (nats * real).sum(0) / (lengths - 1) / math.log(2)
        unmasked = nats.sum(0) / (lengths - 1) / math.log(2)
    assert lengths.min() < lengths.max(), "the tunes must differ in length for the test to mean anything"
    torch.testing.assert_close(batched, alone, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(unmasked, alone), "without the mask the padding would count"


# --- the assignment, graded by the hardened command ------------------------------------------------


GRADED_BY_THE_COMMAND = ("natural_log", "exp_overflows", "temperature_after_softmax", "seed_ignored",
                         "style_gather_and_gumbel")


@pytest.mark.slow
def test_hardened_command_grades_char_lm_submissions(tmp_path):
    from test_exercises import answered

    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / built.ASSIGNMENT, course / folder / built.ASSIGNMENT)
    release = nbformat.read(course / "exercises" / "char_lm" / "char_lm.ipynb", as_version=4)
    source = nbformat.read(course / "solutions" / "char_lm" / "char_lm.ipynb", as_version=4)
    submissions = [Submission("solution"), Submission("blank", blank=True)]
    submissions += [s for s in built.SUBMISSIONS if s.student in GRADED_BY_THE_COMMAND]
    for submission in submissions:
        folder = course / "submitted" / submission.student / "char_lm"
        folder.mkdir(parents=True)
        nbformat.write(answered(release, source, submission), folder / "char_lm.ipynb")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rnnlab.grading", "autograde", "char_lm", "--jobs", "2"],
                          cwd=course, env=venv_env(), capture_output=True, text=True, timeout=1800)
    print(done.stdout, f"\n{len(submissions)} submissions in {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = {o["student"]: o for o in
              json.loads((course / "autograded" / "grading-report-char_lm.json").read_text())}
    points = {"test_bits_per_char": 3, "test_bits_per_char_hidden": 1, "test_sample": 3, "test_sample_hidden": 1}
    for submission in submissions:
        outcome = report[submission.student]
        lost = set(points) if submission.blank else set(submission.fails)
        assert outcome["status"] == "graded", outcome
        assert outcome["score"] == sum(p for cell, p in points.items() if cell not in lost), outcome
        cells = outcome["cells"]["char_lm"]
        assert {cell for cell, (score, _) in cells.items() if score == 0} == lost, (submission.student, cells)


# --- the page ---------------------------------------------------------------------------------


@pytest.mark.book
@pytest.mark.browser
def test_folk_page_shows_sheet_music_and_plays_audio_offline():
    from playwright.sync_api import sync_playwright

    from journeys.browser import CHROMIUM_ARGS, chromium_path

    if not FOLK_PAGE.exists():
        pytest.fail(f"{FOLK_PAGE} is not built: run `make book` first (`make test` does)")
    outside = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file://", "data:")):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", route)
            page.goto(FOLK_PAGE.as_uri(), wait_until="load")
            sheets = page.locator("figure.folk-tune img[src^='data:image/svg+xml'][alt^='Sheet music']")
            assert sheets.count() >= 4, f"{sheets.count()} engraved tunes on the page; expected one from the corpus and three samples"
            assert all(box["width"] > 200 and box["height"] > 50 for box in
                       (sheets.nth(k).bounding_box() for k in range(sheets.count())))
            assert page.evaluate("""() => Array.from(document.querySelectorAll('figure.folk-tune img'))
                .every(img => img.complete && img.naturalWidth > 0)""")
            players = page.locator("figure.folk-tune audio")
            assert players.count() >= 4
            durations = page.evaluate("""async () => Promise.all(
                Array.from(document.querySelectorAll('figure.folk-tune audio')).map(a => new Promise(done => {
                    if (a.readyState >= 1) { done([a.src.slice(0, 5), a.duration]); return; }
                    a.addEventListener('loadedmetadata', () => done([a.src.slice(0, 5), a.duration]));
                    a.addEventListener('error', () => done([a.src.slice(0, 5), -1]));
                    a.load();
                })))""")
            for scheme, seconds in durations:
                assert scheme == "data:" and seconds > 2, durations
        finally:
            browser.close()
    assert outside == [], f"the page asked the network for {outside}"
