"""Sound for the book: MIDI files and piano rolls rendered offline, and played in the page.

    roll = ...                       # (T, 88) of 0/1, key 0 = MIDI note 21 (A0)
    path = render_piano_roll(roll, "chorale.oga", step_seconds=0.6, program=19)
    display(HTML(audio_html(path, title="a Bach chorale")))

Rendering runs Debian's ``fluidsynth`` (package ``fluidsynth``) on the General MIDI
soundfont ``/usr/share/sounds/sf2/FluidR3_GM.sf2`` (package ``fluid-soundfont-gm``),
with no audio device and no network. ``fluidsynth`` writes its output through
libsndfile, so the suffix of the output path picks the format: ``.wav`` (PCM),
``.flac`` (lossless, about a third of the size) or ``.oga``/``.ogg`` (Ogg Vorbis, lossy,
about a tenth: a 20-second clip at 22,050 Hz is some 150 kB). Browsers play all three.

A piano roll becomes a MIDI file through music21 (``music21.midi.translate``): each run
of consecutive active steps of one key is one held note, since a roll cannot tell a held
note from a repeated one.

:func:`audio_html` returns an ``<audio>`` element whose sound is embedded in the page
as a ``data:`` URI: it is published with the page itself, plays from ``file://`` and
from a downloaded notebook, and makes no network request.
"""

from __future__ import annotations

import base64
import html
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from ._checks import describe

__all__ = ["SOUNDFONT", "AudioToolMissing", "render_midi", "piano_roll_to_midi",
           "render_piano_roll", "audio_html"]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

# Output formats fluidsynth writes through libsndfile, by suffix, and their MIME types.
_FORMATS = {".wav": ("wav", "audio/wav"), ".flac": ("flac", "audio/flac"),
            ".oga": ("oga", "audio/ogg"), ".ogg": ("oga", "audio/ogg")}

# A render that takes longer than this has hung (a few seconds per minute of music).
_RENDER_TIMEOUT_S = 300


class AudioToolMissing(RuntimeError):
    """fluidsynth or the General MIDI soundfont is not installed."""


def _fluidsynth() -> str:
    found = shutil.which("fluidsynth")
    if found is None:
        raise AudioToolMissing(
            "fluidsynth is not installed (no `fluidsynth` on PATH): install Debian's "
            "package with `sudo apt-get install fluidsynth`, or run `make system-deps`")
    return found


def _check_soundfont(soundfont) -> Path:
    path = Path(soundfont)
    if not path.is_file():
        hint = ("install Debian's package with `sudo apt-get install fluid-soundfont-gm`, "
                "or run `make system-deps`") if path == SOUNDFONT else "pass an existing .sf2 file"
        raise AudioToolMissing(f"soundfont {str(path)!r} does not exist: {hint}")
    return path


def _output_format(out_path: Path) -> tuple[str, str]:
    try:
        return _FORMATS[out_path.suffix.lower()]
    except KeyError:
        raise ValueError(f"out_path must end in one of {sorted(_FORMATS)}, got {str(out_path)!r}") from None


def render_midi(midi_path, out_path, *, sample_rate: int = 22050, soundfont=SOUNDFONT,
                gain: float = 0.5, reverb: bool = True) -> Path:
    """Render a Standard MIDI File to audio with fluidsynth, offline; return ``out_path``.

    The format follows the suffix of ``out_path`` (``.wav``, ``.flac``, ``.oga``/``.ogg``).
    The audio is stereo at ``sample_rate`` Hz and lasts as long as the MIDI file plus
    fluidsynth's release of the last notes (up to about 3 s). ``gain`` is fluidsynth's
    master gain (its default 0.2 is quiet); ``reverb=False`` turns its reverb and chorus
    off.

    Raises AudioToolMissing if fluidsynth or the soundfont is missing, FileNotFoundError
    if ``midi_path`` does not exist, ValueError for an unknown suffix, and RuntimeError
    (with fluidsynth's own message) if fluidsynth fails or writes nothing.
    """
    midi_path, out_path = Path(midi_path), Path(out_path)
    if not midi_path.is_file():
        raise FileNotFoundError(f"midi_path {str(midi_path)!r} does not exist")
    file_type, _ = _output_format(out_path)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 96000:
        raise ValueError(f"sample_rate must be an int between 8000 and 96000 Hz, got {describe(sample_rate)}")
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 < gain <= 10:
        raise ValueError(f"gain must be a number in (0, 10] (fluidsynth's synth.gain), got {describe(gain)}")
    command = [_fluidsynth(), "-n", "-i", "-q", "-F", str(out_path), "-T", file_type,
               "-r", str(sample_rate), "-g", str(gain)]
    if not reverb:
        command += ["-R", "0", "-C", "0"]
    command += [str(_check_soundfont(soundfont)), str(midi_path)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.unlink(missing_ok=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_RENDER_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"fluidsynth did not finish rendering {str(midi_path)!r} "
                           f"within {_RENDER_TIMEOUT_S} s") from None
    if done.returncode != 0 or not out_path.is_file() or out_path.stat().st_size == 0:
        message = (done.stderr or done.stdout).strip() or "no message"
        raise RuntimeError(f"fluidsynth failed on {str(midi_path)!r} (exit status {done.returncode}, "
                           f"output {'missing' if not out_path.is_file() else 'empty'}): {message}")
    return out_path


def _check_roll(roll, lowest_key: int) -> np.ndarray:
    if isinstance(roll, torch.Tensor):
        roll = roll.detach().cpu().numpy()
    if not isinstance(roll, np.ndarray):
        raise TypeError(f"roll must be a numpy array or torch tensor of 0/1 values, got {describe(roll)}")
    if roll.ndim != 2 or roll.shape[0] == 0:
        raise ValueError(f"roll must be 2-D (steps, keys) with at least one step, got {describe(roll)}")
    values = np.unique(roll)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"roll must hold only 0 and 1 (or False and True), got values {values[:8].tolist()}")
    if isinstance(lowest_key, bool) or not isinstance(lowest_key, (int, np.integer)):
        raise TypeError(f"lowest_key must be an int (a MIDI note number), got {describe(lowest_key)}")
    if lowest_key < 0 or lowest_key + roll.shape[1] - 1 > 127:
        raise ValueError(f"lowest_key = {lowest_key} with {roll.shape[1]} keys reaches MIDI note "
                         f"{lowest_key + roll.shape[1] - 1}; MIDI notes run from 0 to 127")
    return roll.astype(bool)


def piano_roll_to_midi(roll, midi_path, *, step_seconds: float = 0.5, lowest_key: int = 21,
                       program: int = 0, velocity: int = 80) -> Path:
    """Write a piano roll as a Standard MIDI File (through music21); return ``midi_path``.

    ``roll`` is (T, K) of 0/1 (numpy or torch): step t, key k sounds MIDI note
    ``lowest_key + k``; the default suits 88-key rolls (A0 = 21 to C8 = 108). Each step
    lasts ``step_seconds``; each run of consecutive active steps of one key becomes one
    held note. ``program`` is the General MIDI program, counted from 0 (0 acoustic grand
    piano, 19 church organ, 52 choir aahs). The file lasts T steps, even if the last
    steps are silent.
    """
    from music21 import instrument, midi, note, stream, tempo

    roll = _check_roll(roll, lowest_key)
    if isinstance(step_seconds, bool) or not isinstance(step_seconds, (int, float)) or not 0.01 <= step_seconds <= 10:
        raise ValueError(f"step_seconds must be a number of seconds in [0.01, 10], got {describe(step_seconds)}")
    if isinstance(program, bool) or not isinstance(program, (int, np.integer)) or not 0 <= program <= 127:
        raise ValueError(f"program must be a General MIDI program number in 0..127, got {describe(program)}")
    if isinstance(velocity, bool) or not isinstance(velocity, (int, np.integer)) or not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be an int in 1..127, got {describe(velocity)}")

    part = stream.Part()
    player = instrument.Instrument()
    player.midiProgram = int(program)
    part.insert(0, player)
    part.insert(0, tempo.MetronomeMark(number=60.0 / step_seconds))  # one step = one quarter
    steps = roll.shape[0]
    for key in range(roll.shape[1]):
        active = np.flatnonzero(np.diff(np.concatenate(([0], roll[:, key].astype(np.int8), [0]))))
        for start, end in zip(active[::2], active[1::2]):
            sounding = note.Note(lowest_key + key, quarterLength=int(end - start))
            sounding.volume.velocity = int(velocity)
            part.insert(int(start), sounding)
    # A rest at the last step keeps the file T steps long when the roll ends in silence.
    if not roll[-1].any():
        part.insert(steps - 1, note.Rest(quarterLength=1))
    midi_path = Path(midi_path)
    midi_path.parent.mkdir(parents=True, exist_ok=True)
    midi_file = midi.translate.streamToMidiFile(part)
    midi_file.open(str(midi_path), "wb")
    try:
        midi_file.write()
    finally:
        midi_file.close()
    return midi_path


def render_piano_roll(roll, out_path, *, step_seconds: float = 0.5, lowest_key: int = 21,
                      program: int = 0, sample_rate: int = 22050, soundfont=SOUNDFONT,
                      gain: float = 0.5, reverb: bool = True) -> Path:
    """Render a piano roll to audio: :func:`piano_roll_to_midi`, then :func:`render_midi`.

    The MIDI file is temporary; the audio lasts ``T * step_seconds`` plus about one step
    and fluidsynth's release of the last notes.
    """
    out_path = Path(out_path)
    _output_format(out_path)
    with tempfile.TemporaryDirectory(prefix="rnnlab-audio-") as folder:
        midi_path = piano_roll_to_midi(roll, Path(folder) / "roll.mid", step_seconds=step_seconds,
                                       lowest_key=lowest_key, program=program)
        return render_midi(midi_path, out_path, sample_rate=sample_rate, soundfont=soundfont,
                           gain=gain, reverb=reverb)


def audio_html(path, *, title: str | None = None) -> str:
    """The HTML of an ``<audio>`` element that plays the file at ``path``.

    The file's bytes are embedded as a base64 ``data:`` URI, so the sound travels with
    the page (and with a notebook saved from it) and never needs the network. Show it
    in a notebook with ``IPython.display.display(IPython.display.HTML(audio_html(path)))``.
    ``title`` becomes the element's tooltip and accessible name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist")
    _, mime = _output_format(path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    label = "" if title is None else f' title="{html.escape(title)}" aria-label="{html.escape(title)}"'
    return (f'<audio controls preload="metadata"{label} src="data:{mime};base64,{data}">'
            "Your browser does not play this audio.</audio>")
