"""The graded exercises: the checks that explain mistakes, and the real nbgrader workflow.

Fast tests (no nbgrader command) check ``rnnlab.grading`` itself: its implementations of
the usual mistakes are right when no mistake is switched on (oracle: ``torch.nn`` and
finite differences), every catalogued mistake is named by its check, correct answers pass
in any style, and errors become messages. Slow tests run the real nbgrader 0.9.6
commands on a temporary copy of the course: ``generate_assignment``, ``autograde`` of
built submissions (tests/exercise_mistakes/), ``generate_feedback`` and ``export``, and
read the scores from the gradebook.
"""

from __future__ import annotations

import ast
import copy
import csv
import functools
import html
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import rnnlab
from rnnlab.grading.checks import cases as C
from rnnlab.grading.checks import hidden as H
from rnnlab.grading.checks import forget_bias, mistakes as M, oracles, recurrent as checks, training as training_checks

sys.path.insert(0, str(Path(__file__).parent))
from exercise_mistakes import submissions as built_submissions  # noqa: E402
import journeys.course  # noqa: E402
from journeys.servers import venv_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("rnn_forward", "bptt", "gru_cell", "lstm_cell", "gru_vs_lstm", "char_lm")
ALL_CASES = C.VISIBLE + H.CASES
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def weights(a):
    return tuple(a[k] for k in WEIGHTS)


# --- the mistake implementations are right when no mistake is switched on ----------------


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_cells_without_mistakes_match_torch_nn(case):
    one, three, four = case.draw(1), case.draw(3), case.draw(4)
    np.testing.assert_allclose(M.rnn_cell(one["x"], one["h"], *weights(one)), oracles.rnn_cell(one), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M.gru_cell(three["x"], three["h"], *weights(three)), oracles.gru_cell(three),
                               rtol=1e-12, atol=1e-12)
    h, c = M.lstm_cell(four["x"], (four["h"], four["c"]), *weights(four))
    expected_h, expected_c = oracles.lstm_cell(four)
    np.testing.assert_allclose(h, expected_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c, expected_c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_sequences_without_mistakes_match_torch_nn(case):
    for gates, cell, oracle, state in ((1, M.rnn_cell, oracles.rnn_forward, lambda a: a["h"]),
                                       (3, M.gru_cell, oracles.gru_forward, lambda a: a["h"])):
        a = case.draw(gates)
        got = M.run_sequence(lambda x, s: cell(x, s, *weights(a)), a["xs"], state(a))
        np.testing.assert_allclose(got, oracle(a), rtol=1e-12, atol=1e-12)
    a = case.draw(4)
    hs, cs = M.run_sequence(lambda x, s: M.lstm_cell(x, s, *weights(a)), a["xs"], (a["h"], a["c"]))
    with torch.no_grad():
        lstm = torch.nn.LSTM(case.input_size, case.hidden_size, dtype=torch.float64)
        for name in WEIGHTS:
            getattr(lstm, name + "_l0").copy_(torch.from_numpy(a[name]))
        output, (_, c_n) = lstm(torch.from_numpy(a["xs"]), (torch.from_numpy(a["h"])[None], torch.from_numpy(a["c"])[None]))
    np.testing.assert_allclose(hs, output.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cs[-1], c_n[0].numpy(), rtol=1e-12, atol=1e-12)
    expected_hs, expected_cs = oracles.lstm_forward(a)
    np.testing.assert_allclose(cs, expected_cs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_bptt_without_mistakes_matches_autograd(case):
    a = case.draw(1)
    grads, norms = M.rnn_bptt(a["xs"], a["h"], *weights(a), a["target"])
    expected_grads, expected_norms = oracles.rnn_bptt(a)
    for name in WEIGHTS:
        np.testing.assert_allclose(grads[name], expected_grads[name], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norms, expected_norms, rtol=1e-10, atol=1e-14)


def test_bptt_oracle_agrees_with_finite_differences_and_rnnlab_hidden_grad_norms():
    case = C.VISIBLE[1]
    a = case.draw(1)
    grads, norms = oracles.rnn_bptt(a)

    def loss(changed):
        hs = M.run_sequence(lambda x, s: M.rnn_cell(x, s, *weights(changed)), changed["xs"], changed["h"])
        return 0.5 * float(((hs[-1] - changed["target"]) ** 2).sum())

    rng = np.random.default_rng(0)
    for name in WEIGHTS:
        for _ in range(3):
            index = tuple(int(rng.integers(n)) for n in a[name].shape)
            plus, minus = copy.deepcopy(a), copy.deepcopy(a)
            plus[name][index] += 1e-6
            minus[name][index] -= 1e-6
            numeric = (loss(plus) - loss(minus)) / 2e-6
            assert abs(numeric - grads[name][index]) < 1e-6 * max(1.0, abs(numeric)), (name, index)

    model = rnnlab.RNN(case.input_size, case.hidden_size, dtype=torch.float64)
    with torch.no_grad():
        for name in WEIGHTS:
            getattr(model, name + "_l0").copy_(torch.from_numpy(a[name]))
    target = torch.from_numpy(a["target"])
    by_rnnlab = rnnlab.hidden_grad_norms(model, torch.from_numpy(a["xs"]),
                                         lambda output: 0.5 * ((output[-1] - target) ** 2).sum(),
                                         hx=torch.from_numpy(a["h"])[None])
    np.testing.assert_allclose(norms, by_rnnlab, rtol=1e-10)


def test_parameter_counts_without_mistakes_match_torch_nn():
    for sizes in ((3, 5, 1), (4, 4, 2), (7, 3, 3), (1, 1, 1)):
        assert M.rnn_parameter_count(*sizes) == oracles.rnn_parameter_count(*sizes)
    for cell in ("gru", "lstm"):
        for hidden in (1, 5, 14):
            assert training_checks.model_parameters(cell, 8, 4, hidden) == M.model_parameter_count(cell, 8, 4, hidden)


# --- every catalogued mistake is named by its check ---------------------------------------


def student_from_variant(spec, mistake):
    """A student's function that computes ``mistake`` (numpy inside, whatever it is given)."""
    def to_numpy(value):
        if isinstance(value, tuple):
            return tuple(to_numpy(v) for v in value)
        return value.numpy() if isinstance(value, torch.Tensor) else value

    def answer(*args):
        args = [to_numpy(v) for v in args]
        first, state, rest = args[0], args[1], args[2:]
        h, c = state if isinstance(state, tuple) else (state, None)
        arrays = {"x": first, "xs": first, "h": h, "c": c, **dict(zip(WEIGHTS, rest[:4]))}
        if len(rest) > 4:
            arrays["target"] = rest[4]
        return spec.variant(arrays, mistake)
    return answer


def message_of(check, answer, hidden=True):
    with pytest.raises(AssertionError) as failure:
        check(answer, hidden=hidden)
    return str(failure.value)


SEQUENCE_SPECS = {"rnn_forward": checks.RNN_FORWARD, "gru_forward": checks.GRU_FORWARD, "lstm_forward": checks.LSTM_FORWARD}
CELL_SPECS = {"rnn_cell": checks.RNN_CELL, "gru_cell": checks.GRU_CELL, "lstm_cell": checks.LSTM_CELL}
CELL_MISTAKES = {"rnn_cell": M.RNN_CELL_MISTAKES, "gru_cell": M.GRU_CELL_MISTAKES, "lstm_cell": M.LSTM_CELL_MISTAKES}


@pytest.mark.parametrize("name", CELL_SPECS)
def test_every_cell_mistake_is_named_by_the_cell_check(name):
    spec = CELL_SPECS[name]
    for mistake in CELL_MISTAKES[name]:
        message = message_of(lambda f, hidden: checks.run_check(spec, f, hidden), student_from_variant(spec, mistake))
        assert mistake.message in message, (mistake.name, message)


@pytest.mark.parametrize("name", SEQUENCE_SPECS)
def test_every_cell_and_loop_mistake_is_named_by_the_sequence_check(name):
    spec = SEQUENCE_SPECS[name]
    cell_mistakes = CELL_MISTAKES[name.replace("forward", "cell")]
    for mistake in M.sequence_mistakes(cell_mistakes):
        message = message_of(lambda f, hidden: checks.run_check(spec, f, hidden), student_from_variant(spec, mistake))
        for part in (m for m in cell_mistakes + M.LOOP_MISTAKES if m.name in mistake.name.split("+")):
            assert part.message in message, (mistake.name, message)


def test_every_bptt_mistake_fails_a_check_that_names_it():
    for mistake in M.BPTT_MISTAKES:
        answer = student_from_variant(checks.RNN_BPTT, mistake)
        failed = 0
        for check in (checks.check_rnn_bptt_norms, checks.check_rnn_bptt_gradients):
            try:
                check(answer, hidden=True)
            except AssertionError as failure:
                failed += 1
                assert mistake.message in str(failure), (mistake.name, str(failure))
        assert failed, f"{mistake.name} passes both BPTT checks"


def test_a_loss_without_its_half_is_reported_as_a_factor_of_two():
    def doubled(*args):
        grads, norms = M.rnn_bptt(*args)
        return {k: 2 * v for k, v in grads.items()}, 2 * norms
    assert "2 × the expected ones" in message_of(checks.check_rnn_bptt_gradients, doubled)


@pytest.mark.parametrize("mistake", M.PARAMETER_COUNT_MISTAKES, ids=lambda m: m.name)
def test_every_parameter_count_mistake_is_named(mistake):
    answer = lambda *sizes: M.rnn_parameter_count(*sizes, **mistake.flags)  # noqa: E731
    assert mistake.message in message_of(checks.check_rnn_parameter_count, answer)


def test_the_catalogue_lists_each_assignments_mistakes_once_by_name():
    assert sorted(M.CATALOGUES) == sorted(ASSIGNMENTS)
    for assignment, catalogues in M.CATALOGUES.items():
        names = [(m.name, tuple(m.cell.items()), tuple(m.loop.items()), tuple(m.flags.items()))
                 for catalogue in catalogues for m in catalogue]
        assert len(set(names)) == len(names), assignment
        for catalogue in catalogues:
            for mistake in catalogue:
                assert mistake.message and (mistake.cell or mistake.loop or mistake.flags or mistake.found), mistake.name


@pytest.mark.parametrize("mistake", M.BUDGET_MISTAKES, ids=lambda m: m.name)
def test_every_hidden_size_mistake_is_named(mistake):
    answer = lambda *args: M.hidden_size_for_budget(*args, **mistake.flags)  # noqa: E731
    assert mistake.message in message_of(training_checks.check_hidden_size_for_budget, answer)


# --- correct answers pass in any style; errors become messages ------------------------------


def torch_rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    t = [torch.as_tensor(v, dtype=torch.float32) for v in (x, h, weight_ih, weight_hh, bias_ih, bias_hh)]
    return torch.tanh(t[0] @ t[2].T + t[4] + t[1] @ t[3].T + t[5])


def warning_rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    import warnings
    warnings.warn("a warning from correct code")
    print("stderr output from correct code", file=sys.stderr)
    np.exp(np.float64(1e3))
    return np.tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)


def vectorised_rnn_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    projected = xs.astype(np.float32) @ weight_ih.T.astype(np.float32) + bias_ih + bias_hh
    states = np.empty(projected.shape, dtype=np.float32)
    h = h0
    for t in range(len(xs)):
        h = np.tanh(projected[t] + h @ weight_hh.T)
        states[t] = h
    return list(states)


def numpy_gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return M.gru_cell(*(np.asarray(v, dtype=np.float32) for v in (x, h, weight_ih, weight_hh, bias_ih, bias_hh)))


def sliced_gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    hidden = h.shape[1]
    block = lambda m, k: m[k * hidden:(k + 1) * hidden]  # noqa: E731
    gate = lambda k: torch.sigmoid(x @ block(weight_ih, k).T + block(bias_ih, k)  # noqa: E731
                                   + h @ block(weight_hh, k).T + block(bias_hh, k))
    r, z = gate(0), gate(1)
    n = torch.tanh(x @ block(weight_ih, 2).T + block(bias_ih, 2) + r * (h @ block(weight_hh, 2).T + block(bias_hh, 2)))
    return torch.lerp(n, h, z)


def torch_gru_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    cell = torch.nn.GRUCell(xs.shape[-1], h0.shape[-1], dtype=xs.dtype)
    with torch.no_grad():
        for name, value in zip(WEIGHTS, (weight_ih, weight_hh, bias_ih, bias_hh)):
            getattr(cell, name).copy_(value)
    states, h = [], h0
    for x in xs:
        h = cell(x, h)
        states.append(h)
    return torch.stack(states)   # requires grad: the check detaches it


def numpy_lstm_forward(xs, state0, *w):
    step = lambda x, s: M.lstm_cell(x, s, *(v.numpy() for v in w))  # noqa: E731
    return M.run_sequence(step, xs.numpy(), tuple(s.numpy() for s in state0))


def split_forget_bias(lstm, value):
    hidden = lstm.hidden_size
    for name, parameter in lstm.named_parameters():
        if "bias" in name:
            parameter.data[hidden:2 * hidden] = value / 2


@pytest.mark.parametrize("check,answer", [
    (checks.check_rnn_cell, torch_rnn_cell),
    (checks.check_rnn_cell, warning_rnn_cell),
    (checks.check_rnn_forward, vectorised_rnn_forward),
    (checks.check_gru_cell, numpy_gru_cell),
    (checks.check_gru_cell, sliced_gru_cell),
    (checks.check_gru_forward, torch_gru_forward),
    (checks.check_lstm_forward, numpy_lstm_forward),
    (checks.check_rnn_bptt_norms, lambda *a: M.rnn_bptt(*(np.float32(v) for v in a))),
    (checks.check_rnn_bptt_gradients, lambda *a: M.rnn_bptt(*(np.float32(v) for v in a))),
    (forget_bias.check_set_forget_gate_bias, split_forget_bias),
], ids=lambda v: getattr(v, "__name__", None))
def test_correct_answers_pass_in_any_style_and_checks_return_none(check, answer, capsys):
    assert check(answer, hidden=True) is None
    captured = capsys.readouterr()
    assert captured.out.startswith("OK: ") and captured.err == ""


@pytest.mark.parametrize("answer,phrase", [
    (lambda *a: (_ for _ in ()).throw(NotImplementedError()), "is not written yet"),
    (lambda *a: None, "is a `return` missing?"),
    (lambda x, h, *w: h[0].clone(), "returned h_t of shape"),
    (lambda x, h, w_ih, *w: x @ w_ih, "a weight used untransposed"),
    (lambda x, h, *w: h.mul_(0.5), "changed its argument `h` in place"),
    (lambda *a: "h_t", "expected a numpy array or a torch tensor"),
    (lambda x, h, *w: h / 0.0, "NaN or infinite values"),
], ids=("not_implemented", "none", "wrong_shape", "untransposed", "in_place", "string", "not_finite"))
def test_errors_and_unreadable_answers_become_messages(answer, phrase):
    assert phrase in message_of(checks.check_gru_cell, answer, hidden=False)


def loop_over(cell_fn):
    """A correct sequence function built on ``cell_fn`` (any state: one array or a pair)."""
    def forward(xs, state, *w):
        states = []
        for x in xs:
            state = cell_fn(x, state, *w)
            states.append(state)
        if isinstance(state, tuple):
            return tuple(torch.stack([s[k] for s in states]) if isinstance(state[0], torch.Tensor)
                         else np.stack([s[k] for s in states]) for k in range(len(state)))
        return torch.stack(states) if isinstance(state, torch.Tensor) else np.stack(states)
    return forward


@pytest.mark.parametrize("name", SEQUENCE_SPECS)
def test_a_right_loop_over_a_wrong_cell_is_told_apart_from_a_wrong_loop(name):
    spec, cell_spec = SEQUENCE_SPECS[name], SEQUENCE_SPECS[name].cell
    check = getattr(checks, f"check_{name}")
    mistake = CELL_MISTAKES[cell_spec.name][0]
    wrong_cell = student_from_variant(cell_spec, mistake)
    wrong_cell_as_given = lambda *args: _as_kind(wrong_cell(*args), args[0])  # noqa: E731
    message = message_of(lambda f, hidden: check(f, hidden=hidden, cell=wrong_cell_as_given),
                         loop_over(wrong_cell_as_given))
    assert f"The loop itself is right: {name} returns exactly what your {cell_spec.name} gives" in message
    assert f"{cell_spec.name}, which its own test above already counts" in message
    assert message.splitlines()[-1] == "The mistake: " + mistake.message
    # A loop mistake over a right cell is named as the loop's, never blamed on the cell.
    loop_mistake = M.LOOP_MISTAKES[0]
    right_cell = student_from_variant(cell_spec, M.Mistake("none", ""))
    message = message_of(lambda f, hidden: check(f, hidden=hidden, cell=right_cell),
                         student_from_variant(spec, loop_mistake))
    assert "The loop itself is right" not in message and loop_mistake.message in message


def _as_kind(value, like):
    """``value`` (numpy, or a pair of them) as tensors when ``like`` is a tensor."""
    if isinstance(value, tuple):
        return tuple(_as_kind(v, like) for v in value)
    return torch.from_numpy(np.asarray(value)) if isinstance(like, torch.Tensor) else value


def test_failed_checks_show_their_message_as_the_whole_red_box():
    """IPython renders ``_render_traceback_`` instead of frames: the first line says what is wrong."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["wrong"] = lambda x, h, *w: h * 0.0
    shown = []
    shell._showtraceback = lambda etype, value, stb: shown.append((etype, stb))
    shell.run_cell("from rnnlab.grading.checks import check_rnn_cell\ncheck_rnn_cell(wrong)")
    (etype, stb), = shown
    assert issubclass(etype, AssertionError)
    lines = "\n".join(stb).splitlines()
    assert re.sub(r"\x1b\[[0-9;]*m", "", lines[0]).startswith("rnn_cell is wrong on the inputs B = 3")
    assert not any("recurrent.py" in line or "Traceback" in line for line in lines), lines


def test_hidden_tests_refuse_to_run_without_their_inputs(tmp_path):
    """The hand-out leaves rnnlab/grading/checks/hidden.py out: a hidden test there says so instead of running."""
    shutil.copytree(ROOT / "rnnlab", tmp_path / "rnnlab", ignore=shutil.ignore_patterns("hidden.py", "__pycache__"))
    code = ("from rnnlab.grading.checks import check_rnn_cell\n"
            "import numpy as np\n"
            "f = lambda x, h, wi, wh, bi, bh: np.tanh(x @ wi.T + bi + h @ wh.T + bh)\n"
            "check_rnn_cell(f)\n"
            "try:\n    check_rnn_cell(f, hidden=True)\nexcept AssertionError as e:\n    print('REFUSED', e)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: rnn_cell agrees") and "REFUSED The hidden tests run when your work is graded" in done.stdout


def test_sequence_and_gradient_shape_mistakes_get_hints():
    last_only = lambda xs, h0, *w: M.run_sequence(lambda x, s: M.rnn_cell(x, s, *w), xs, h0)[-1]  # noqa: E731
    assert "one step only" in message_of(checks.check_rnn_forward, last_only)

    def unsummed(*args):
        grads, norms = M.rnn_bptt(*args)
        return {**grads, "bias_ih": np.tile(grads["bias_ih"], (args[1].shape[0], 1)) / args[1].shape[0]}, norms
    assert "sum over the batch" in message_of(checks.check_rnn_bptt_gradients, unsummed)


@pytest.mark.parametrize("answer,phrase", [
    (lambda lstm, value: None, "nothing in the LSTM changed"),
    (lambda lstm, value: [p.data[lstm.hidden_size:2 * lstm.hidden_size].fill_(value) for n, p in lstm.named_parameters()
                          if "bias" in n], "both b_if and b_hf are set"),
    (lambda lstm, value: [p.data[lstm.hidden_size:2 * lstm.hidden_size].fill_(value) for n, p in lstm.named_parameters()
                          if "bias_ih" in n], "only bias_ih_l0[H:2H] was set"),
    (lambda lstm, value: [p.data[:lstm.hidden_size].fill_(value) for n, p in lstm.named_parameters()
                          if "bias_ih" in n], "the input (i) gate's bias"),
    (lambda lstm, value: split_forget_bias(lstm, value) or lstm.bias_hh_l0.data[2 * lstm.hidden_size:].add_(1.0),
     "the candidate (g) gate's bias"),
    (lambda lstm, value: [p.data[lstm.hidden_size:2 * lstm.hidden_size].fill_(value / 2) for n, p in lstm.named_parameters()
                          if "bias" in n and n.endswith("l0")], "layer 1 was not changed"),
    (lambda lstm, value: [p.requires_grad_(False) for p in lstm.parameters()], "no longer requires gradients"),
    (lambda lstm, value: lstm.weight_ih_l0.data.zero_(), "you changed weight_ih_l0"),
], ids=("nothing", "both", "only_ih", "input_gate", "candidate_gate", "first_layer_only", "no_grad", "weights"))
def test_forget_gate_bias_mistakes_are_named(answer, phrase):
    assert phrase in message_of(forget_bias.check_set_forget_gate_bias, answer, hidden=False)


def test_forget_gate_bias_reverse_direction_is_checked_by_the_hidden_tests():
    def forward_only(lstm, value):
        hidden = lstm.hidden_size
        for name, parameter in lstm.named_parameters():
            if "bias" in name and not name.endswith("reverse"):
                parameter.data[hidden:2 * hidden] = value if "ih" in name else 0.0
    forget_bias.check_set_forget_gate_bias(forward_only)
    assert "reverse direction was not changed" in message_of(forget_bias.check_set_forget_gate_bias, forward_only)


def small_runs(seeded=True, steps=4):
    """Real (short) training runs of the gru_vs_lstm assignment's kind, for the training checks."""
    task = rnnlab.tasks.temporal_order_task(length=(12, 13), first_position=(2, 3), second_position=(6, 7))

    def train_cell(cell, seed):
        if seeded:
            torch.manual_seed(seed)
        hidden = training_checks.largest_hidden_size(cell, task.input_size, task.output_size, 300)
        layer = {"gru": rnnlab.GRU, "lstm": rnnlab.LSTM}[cell](task.input_size, hidden)
        model = rnnlab.SequenceModel(layer, task.output_size, readout=task.readout)
        return model, rnnlab.train(model, task, steps=steps, batch_size=8, eval_every=2, seed=seed, progress=False)

    runs = {cell: [train_cell(cell, seed) for seed in (0, 1)] for cell in training_checks.CELLS}
    settings = dict(task=task, budget=300, steps=steps, seeds=(0, 1), eval_every=2)
    return runs, train_cell, settings


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread than on two competing ones; restore the count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_checks_accept_correct_runs_and_name_their_mistakes(one_thread):
    runs, train_cell, settings = small_runs()
    training_checks.check_training_runs(runs, train_cell, hidden=True, **settings)

    unseeded_runs, unseeded, _ = small_runs(seeded=False)
    training_checks.check_training_runs(unseeded_runs, unseeded, **settings)
    with pytest.raises(AssertionError, match=r"torch.manual_seed\(seed\)"):
        training_checks.check_training_runs(unseeded_runs, unseeded, hidden=True, **settings)

    swapped = {"gru": runs["lstm"], "lstm": runs["gru"]}
    with pytest.raises(AssertionError, match="must build a GRU"):
        training_checks.check_training_runs(swapped, train_cell, **settings)
    with pytest.raises(AssertionError, match="training steps recorded; the budget is STEPS = 6"):
        training_checks.check_training_runs(runs, train_cell, **{**settings, "steps": 6})
    with pytest.raises(AssertionError, match="identical training"):
        training_checks.check_training_runs({"gru": runs["gru"][:1] * 2, "lstm": runs["lstm"]}, train_cell, **settings)


def test_steps_to_solve_check_names_its_mistakes():
    History = rnnlab.History
    history = History(step=[1, 2, 3, 4, 5, 6], accuracy=[0.95, 0.2, 0.5, 0.9, 0.9, 0.4],
                      eval_step=[2, 4, 6], eval_accuracy=[0.9, 0.95, 0.5])
    runs = {"gru": [(None, history)], "lstm": [(None, History(step=[1, 2], accuracy=[0.1, 0.2],
                                                              eval_step=[2], eval_accuracy=[0.3]))]}

    def solved(runs, threshold, key=("eval_step", "eval_accuracy"), strict=False):
        return {cell: [next((s for s, a in zip(getattr(h, key[0]), getattr(h, key[1]))
                             if (a > threshold if strict else a >= threshold)), None) for _, h in rs]
                for cell, rs in runs.items()}

    training_checks.check_steps_to_solve(solved, runs, 0.9, hidden=True)
    training = lambda r, t: solved(r, t, key=("step", "accuracy"))  # noqa: E731
    assert "training accuracy" in message_of(lambda f, hidden: training_checks.check_steps_to_solve(f, runs, 0.9), training)
    strict = lambda r, t: solved(r, t, strict=True)  # noqa: E731
    assert "not >" in message_of(lambda f, hidden: training_checks.check_steps_to_solve(f, runs, 0.9), strict)
    last = lambda r, t: {c: [h.eval_step[-1] if h.eval_accuracy[-1] >= t else None for _, h in rs]  # noqa: E731
                         for c, rs in r.items()}
    assert "the last evaluation only" in message_of(lambda f, hidden: training_checks.check_steps_to_solve(f, runs, 0.5),
                                                    last)


# --- the notebooks ------------------------------------------------------------------------


def notebook(kind, assignment):
    return nbformat.read(ROOT / kind / assignment / f"{assignment}.ipynb", as_version=4)


def grade_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_end_in_a_check_that_returns_none(assignment):
    """A graded cell ending in a value would be read as partial credit: ours end in a check call."""
    for cell in grade_cells(notebook("solutions", assignment)):
        last = ast.parse(cell.source).body[-1]
        assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call), cell.metadata.nbgrader.grade_id
        assert last.value.func.id.startswith("check_"), cell.metadata.nbgrader.grade_id


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_task_has_visible_then_hidden_tests(assignment):
    cells = grade_cells(notebook("solutions", assignment))
    ids = [c.metadata.nbgrader.grade_id for c in cells]
    for cell in cells:
        hidden = cell.metadata.nbgrader.grade_id.endswith("_hidden")
        assert ("### BEGIN HIDDEN TESTS" in cell.source) == hidden
        if hidden:
            assert ids.index(cell.metadata.nbgrader.grade_id[:-len("_hidden")]) < ids.index(cell.metadata.nbgrader.grade_id)
    released = grade_cells(notebook("exercises", assignment))
    assert not any("BEGIN HIDDEN TESTS" in c.source or "hidden=True" in c.source for c in released)
    assert all("raise NotImplementedError()" in c.source for c in notebook("exercises", assignment).cells
               if c.metadata.nbgrader.get("solution") and c.cell_type == "code")


def test_builder_reads_cell_roles():
    sys.path.insert(0, str(ROOT / "tools"))
    import build_exercises
    text = ("# Title\n\ntext\n\n```{code-cell} ipython3\nimport numpy\n```\n\n"
            "```{code-cell} ipython3\n:nbgrader: solution\n:grade_id: f\ndef f():\n    pass\n```\n\n"
            "```{code-cell} ipython3\n:nbgrader: tests\n:grade_id: test_f\n:points: 2\ncheck_f(f)\n```\n\n"
            '+++ {"nbgrader": "answer", "grade_id": "why", "points": 3}\n\nbecause\n')
    nb = build_exercises.parse("demo", text)
    roles = [(c.cell_type, c.metadata.nbgrader["grade_id"], c.metadata.nbgrader["solution"],
              c.metadata.nbgrader["grade"], c.metadata.nbgrader.get("points")) for c in nb.cells]
    assert roles == [("markdown", "demo-text-1", False, False, None), ("code", "demo-given-2", False, False, None),
                     ("code", "f", True, False, None), ("code", "test_f", False, True, 2),
                     ("markdown", "why", True, True, 3)]
    with pytest.raises(ValueError, match="unknown option"):
        build_exercises.parse("demo", "```{code-cell} ipython3\n:point: 2\nx\n```\n")


# --- the real nbgrader commands -------------------------------------------------------------


# The fixtures below run nbgrader (or the grading command) on a whole class, each command
# bounded by its own time limit; the first test to use one pays for it, so the test's own
# limit (pyproject's 900 s) is raised to cover those commands on a busy machine.
GRADES_A_CLASS = pytest.mark.timeout(7200)


# The real nbgrader command line (journeys.course.nbgrader); one command may grade a whole class.
nbgrader = functools.partial(journeys.course.nbgrader, timeout=1500)


@pytest.mark.slow
def test_committed_notebooks_are_regenerated_exactly(tmp_path):
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    (tmp_path / "solutions").mkdir()
    for source in (ROOT / "solutions").glob("*.md"):
        shutil.copy(source, tmp_path / "solutions")
    assert sorted(p.stem for p in (ROOT / "solutions").glob("*.md")) == sorted(ASSIGNMENTS)
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_exercises.py"), "--root", str(tmp_path)],
                   check=True, capture_output=True)
    for kind in ("solutions", "exercises"):
        for assignment in ASSIGNMENTS:
            relative = Path(kind) / assignment / f"{assignment}.ipynb"
            committed = json.loads((ROOT / relative).read_text())
            regenerated = json.loads((tmp_path / relative).read_text())
            assert committed == regenerated, f"{relative} differs from what tools/build_exercises.py writes: rerun it"
            shipped = sorted(p.name for p in (ROOT / kind / assignment).iterdir() if not p.name.startswith("."))
            assert shipped == [f"{assignment}.ipynb"], f"{kind}/{assignment} holds more than its notebook: {shipped}"


def answered(release, source, submission):
    """The release with the solution's answers, then the submission's edits."""
    nb = copy.deepcopy(release)
    if submission.blank:
        return nb
    answers = {c.metadata.nbgrader.grade_id: c.source for c in source.cells if c.metadata.nbgrader.get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
        for old, new in submission.edits.get(grade_id, ()):
            assert cell.source.count(old) == 1, f"{submission.student}: {old!r} is not once in cell {grade_id}"
            cell.source = cell.source.replace(old, new)
        if grade_id in submission.sources:
            cell.source = submission.sources[grade_id]
    unknown = set(submission.edits) | set(submission.sources)
    assert unknown <= set(answers), f"{submission.student}: no solution cell {unknown - set(answers)}"
    return nb


def all_submissions():
    from exercise_mistakes import Submission
    common = [Submission("solution"), Submission("blank", blank=True)]
    return {assignment: common + listed for assignment, listed in built_submissions().items()}


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """A temporary course graded by the real commands; returns (course, submissions, seconds per notebook)."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copytree(ROOT / "exercises", course / "exercises")
    table = all_submissions()
    timings = {}
    nbgrader(course, "generate_assignment", "*", "--force")
    for assignment, listed in table.items():
        release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
        source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        for submission in listed:
            folder = course / "submitted" / submission.student / assignment
            folder.mkdir(parents=True)
            nbformat.write(answered(release, source, submission), folder / f"{assignment}.ipynb")
        started = time.perf_counter()
        with open(course / "autograde.log", "a") as log:
            log.write(nbgrader(course, "autograde", assignment))
        timings[assignment] = (time.perf_counter() - started) / len(listed)
    nbgrader(course, "generate_feedback", "*")
    nbgrader(course, "export")
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "autograde_seconds_per_notebook.json").write_text(json.dumps(timings, indent=1))
    return course, table, timings


def scores(course, assignment, student):
    """Autograded cells of one submission: grade_id -> (score, max_score), from the gradebook."""
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(assignment, assignment, student)
        return {grade.name: (grade.score, grade.max_score) for grade in submitted.grades
                if grade.cell.cell_type == "code"}


def cell_outputs(course, assignment, student):
    """grade_id -> the text of every output of that cell in the autograded notebook."""
    nb = nbformat.read(course / "autograded" / student / assignment / f"{assignment}.ipynb", as_version=4)
    texts = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            texts[cell.metadata.get("nbgrader", {}).get("grade_id")] = "\n".join(
                o.get("text", "") + o.get("evalue", "") for o in cell.outputs)
    return nb, texts


def feedback_text(course, assignment, student):
    page = (course / "feedback" / student / assignment / f"{assignment}.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@GRADES_A_CLASS
@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_earns_full_marks_without_stray_output(graded_course, assignment):
    course, _, _ = graded_course
    got = scores(course, assignment, "solution")
    assert got and all(score == maximum for score, maximum in got.values()), got
    nb, _ = cell_outputs(course, assignment, "solution")
    for cell in grade_cells(nb):
        kinds = [(o.output_type, o.get("name")) for o in cell.outputs]
        assert kinds == [("stream", "stdout")], (cell.metadata.nbgrader.grade_id, kinds)


@GRADES_A_CLASS
@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_unanswered_release_earns_zero_and_is_graded(graded_course, assignment):
    course, _, _ = graded_course
    got = scores(course, assignment, "blank")
    assert got and all(score == 0 for score, _ in got.values()), got
    _, texts = cell_outputs(course, assignment, "blank")
    assert any("is not written yet" in text for text in texts.values())


@GRADES_A_CLASS
@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_built_submissions_lose_exactly_their_points_and_feedback_names_the_mistake(graded_course, assignment):
    course, table, _ = graded_course
    for submission in table[assignment]:
        if submission.student in ("solution", "blank"):
            continue
        got = scores(course, assignment, submission.student)
        lost = sorted(name for name, (score, maximum) in got.items() if score != maximum)
        assert lost == sorted(submission.fails), (submission.student, got)
        assert all(got[name][0] == 0 for name in lost), (submission.student, got)
        _, texts = cell_outputs(course, assignment, submission.student)
        shown = feedback_text(course, assignment, submission.student)
        for name, phrase in submission.fails.items():
            if phrase is not None:
                assert phrase in texts[name], (submission.student, name, texts[name])
                assert phrase in shown, (submission.student, phrase)


@GRADES_A_CLASS
@pytest.mark.slow
def test_export_lists_every_submission_with_its_score(graded_course):
    course, table, timings = graded_course
    with open(course / "grades.csv", newline="") as handle:
        rows = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(handle)}
    for assignment, listed in table.items():
        for submission in listed:
            row = rows[(assignment, submission.student)]
            autograded = scores(course, assignment, submission.student)
            assert float(row["score"]) >= sum(score for score, _ in autograded.values())
        assert float(rows[(assignment, "blank")]["score"]) == 0
    print("autograde seconds per notebook:", {a: round(t, 1) for a, t in timings.items()})


@GRADES_A_CLASS
@pytest.mark.slow
def test_stock_autograde_is_quiet_about_submissions_that_kept_their_locked_cells(graded_course):
    """Every built submission edits answer cells only: stock autograde warns about nothing
    (no false checksum alarm for test cells released without hidden tests, no kernel
    "running over TCP without encryption", no SQLAlchemy noise)."""
    course, _, _ = graded_course
    log = (course / "autograde.log").read_text()
    for noise in ("checksum", "without encryption", "SAWarning", "WARNING"):
        assert noise not in log, [line for line in log.splitlines() if noise in line][:5]


@pytest.mark.slow
def test_stock_autograde_still_warns_about_a_real_edit_of_a_test_cell(tmp_path):
    assignment = "rnn_forward"
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / assignment, tmp_path / folder / assignment)
    release = nbformat.read(tmp_path / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    edited = copy.deepcopy(release)
    for cell in edited.cells:
        if cell.metadata.nbgrader.get("grade_id") == "test_rnn_forward_hidden":
            cell.source += "\nassert True  # a student's edit"
    for student, notebook in (("untouched", release), ("edited", edited)):
        folder = tmp_path / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / f"{assignment}.ipynb")
    nbgrader(tmp_path, "generate_assignment", assignment, "--force")
    log = nbgrader(tmp_path, "autograde", assignment)
    warned = [line for line in log.splitlines() if "checksum" in line]
    assert len(warned) == 1 and "test_rnn_forward_hidden" in warned[0], warned
    assert "without encryption" not in log


@GRADES_A_CLASS
@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_plain_generate_feedback_hides_the_hidden_tests(graded_course, assignment):
    # The hidden tests call the checks with hidden=True; nbgrader puts them back into the
    # autograded notebook, and nbgrader_config.py's feedback preprocessors take them out.
    course, _, _ = graded_course
    graded = (course / "autograded" / "solution" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8")
    assert "hidden=True" in graded, "the autograded notebook should hold the hidden tests"
    assert "hidden=True" not in feedback_text(course, assignment, "solution")


# --- the hardened command on built submissions: reports that say why, decisions that hold ------


def grading_command(course, *args):
    """Run ``python -m rnnlab.grading <args>`` in ``course``; return the finished process."""
    return subprocess.run([sys.executable, "-m", "rnnlab.grading", *args], cwd=course, env=venv_env(),
                          capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def lstm_class(tmp_path_factory):
    """lstm_cell's built submissions (and the solution and a blank) graded by the hardened command."""
    assignment = "lstm_cell"
    course = tmp_path_factory.mktemp("lstm-class")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / assignment, course / folder / assignment)
    release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    listed = all_submissions()[assignment]
    for submission in listed:
        folder = course / "submitted" / submission.student / assignment
        folder.mkdir(parents=True)
        nbformat.write(answered(release, source, submission), folder / f"{assignment}.ipynb")
    done = grading_command(course, "autograde", assignment)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return course, listed, done


def report_rows(course, suffix):
    with open(course / "autograded" / f"grading-report-lstm_cell{suffix}", newline="") as handle:
        return list(csv.DictReader(handle))


@GRADES_A_CLASS
@pytest.mark.slow
def test_class_summary_counts_each_named_mistake_once_per_student(lstm_class):
    course, listed, done = lstm_class
    from exercise_mistakes import lstm_cell as built

    summary = {row["mistake"]: row["student_ids"].split() for row in report_rows(course, "-mistakes.csv")}
    for submission in listed:
        phrases = {p for p in submission.fails.values() if p}
        for phrase in phrases:
            matching = [m for m in summary if phrase in m]
            assert len(matching) == 1, (submission.student, phrase, matching)
            assert submission.student in summary[matching[0]], (submission.student, summary)
    # Every student the summary names has exactly the mistakes built into their submission.
    named = {s for who in summary.values() for s in who}
    assert named == {s.student for s in built.SUBMISSIONS if any(s.fails.values())}
    assert "Mistakes named by the checks" in done.stdout and "you read them as i, f, o, g" in done.stdout


@GRADES_A_CLASS
@pytest.mark.slow
def test_report_gives_each_cell_its_score_reason_and_mistake(lstm_class):
    course, listed, _ = lstm_class
    cells = {(r["student"], r["cell"]): r for r in report_rows(course, "-cells.csv")}
    order = cells[("gate_order_ifog", "test_lstm_cell")]
    assert order["score"] == "0" and order["by"] == "autograder"
    assert order["reason"].startswith("lstm_cell is wrong on the inputs B = 3")
    assert "you read them as i, f, o, g" in order["mistakes"]
    loop = cells[("gate_order_ifog", "test_lstm_forward")]
    assert loop["from_earlier_function"] == "yes" and "you read them as i, f, o, g" in loop["mistakes"]
    assert cells[("solution", "test_lstm_forward")]["score"] == "2"
    rows = {r["student"]: r for r in report_rows(course, ".csv")}
    assert rows["gate_order_ifog"]["test_lstm_cell"] == "0" and rows["solution"]["test_lstm_cell"] == "3"
    assert "you read them as i, f, o, g" in rows["gate_order_ifog"]["mistakes"]


@GRADES_A_CLASS
@pytest.mark.slow
def test_a_rerun_keeps_the_instructors_score_unless_forced(lstm_class):
    from nbgrader.api import Gradebook

    course, _, _ = lstm_class
    student, cell = "sigmoid_on_cell", "test_lstm_cell"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # what the formgrader's score box does
        grade = gb.find_grade(cell, "lstm_cell", "lstm_cell", student)
        grade.manual_score = 2.0
        grade.needs_manual_grade = False
        gb.db.commit()
    again = grading_command(course, "autograde", "lstm_cell", "--student", student)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"instructor's score kept: {cell}" in again.stdout
    assert scores(course, "lstm_cell", student)[cell] == (2.0, 3.0)
    row = {(r["student"], r["cell"]): r for r in report_rows(course, "-cells.csv")}[(student, cell)]
    assert (row["score"], row["by"]) == ("2", "instructor")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert not gb.find_grade(cell, "lstm_cell", "lstm_cell", student).needs_manual_grade

    forced = grading_command(course, "autograde", "lstm_cell", "--student", student, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert scores(course, "lstm_cell", student)[cell] == (0.0, 3.0)
    assert "instructor's score kept" not in forced.stdout


@GRADES_A_CLASS
@pytest.mark.slow
def test_feedback_command_lists_students_warns_about_waiting_ones_and_zips_by_id(lstm_class):
    from nbgrader.api import Gradebook

    course, listed, _ = lstm_class
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_submission_notebook("lstm_cell", "lstm_cell", "blank").flagged = True
        gb.db.commit()
    done = grading_command(course, "feedback", "lstm_cell", "--zip")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for submission in listed:
        (line,) = [l for l in lines if l.startswith(submission.student + " ")]
        assert f"feedback/{submission.student}/lstm_cell/lstm_cell.html" in line
    assert any(l.startswith("WARNING: ") and "wait for an instructor" in l for l in lines)
    assert "  blank: lstm_cell flagged for review" in lines
    assert "[GenerateFeedbackApp | WARNING]" not in done.stderr, done.stderr
    import zipfile
    with zipfile.ZipFile(course / "feedback" / "lstm_cell-feedback.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{s.student}.html" for s in listed)
        page = archive.read("gate_order_ifog.html").decode()
    assert "you read them as i, f, o, g" in page and "white-space: pre-wrap" in page
    assert "hidden=True" not in page and "For the instructor" not in page


def test_report_reads_why_each_test_failed_and_puts_flags_where_the_formgrader_shows_them(tmp_path):
    """outcome.decide on a job's result: per-cell reasons and named mistakes from the autograded
    notebook's error outputs, and each flag as a comment on the answer cell above its test."""
    from rnnlab.grading.command import report
    from rnnlab.grading.command.outcome import decide
    from rnnlab.grading.command.records import JobResult, Judged, NotebookResult, Score
    from rnnlab.grading.command.preprocessors import FOR_INSTRUCTOR

    def test_cell(grade_id, error=None):
        cell = nbformat.v4.new_code_cell("check(f)", metadata={"nbgrader": {"grade": True, "grade_id": grade_id,
                                                                            "solution": False, "points": 2}})
        if error:
            cell.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue=error, traceback=[])]
        return cell

    answer = lambda grade_id: nbformat.v4.new_code_cell(  # noqa: E731
        "def f(): ...", metadata={"nbgrader": {"solution": True, "grade_id": grade_id}})
    notebook = nbformat.v4.new_notebook(cells=[
        answer("lstm_cell"), test_cell("test_cell", "lstm_cell is wrong on the inputs B = 3\n  h_t differs\n"
                                                    "The mistake: gate blocks taken in the wrong order: i, f, o, g"),
        answer("lstm_forward"), test_cell("test_forward", "lstm_forward is wrong on the inputs B = 3\n"
                                                          "The loop itself is right: lstm_forward returns ...\n"
                                                          "The mistake: gate blocks taken in the wrong order: i, f, o, g"),
        test_cell("test_other")])
    nbformat.write(notebook, tmp_path / "nb.ipynb")
    result = JobResult("s", seconds=1.0, autograded=str(tmp_path), notebooks={"nb": NotebookResult(
        scores={"test_cell": Score(0.0, 2.0), "test_forward": Score(0.0, 2.0), "test_other": Score(2.0, 2.0)},
        outside={"test_other": Judged("fail", "AssertionError: patched")},
        comments={"lstm_cell": None, "lstm_forward": None})})
    outcome = decide(result, max_score=6.0)
    cells = outcome.graded["nb"]
    assert cells["test_cell"].reason == "lstm_cell is wrong on the inputs B = 3"
    assert cells["test_cell"].mistakes == ["gate blocks taken in the wrong order: i, f, o, g"]
    assert cells["test_forward"].from_earlier and not cells["test_cell"].from_earlier
    assert cells["test_other"].reason == "AssertionError: patched"  # disputed: the outside check's reason
    assert outcome.status == "flagged"
    comment = outcome.comments["nb"]["lstm_forward"]  # test_other sits below the lstm_forward answer
    assert comment.startswith(FOR_INSTRUCTOR) and "test_other" in comment
    assert outcome.comments["nb"]["lstm_cell"] is None
    assert report.class_summary([outcome]) == [("gate blocks taken in the wrong order: i, f, o, g", ["s"])]
    assert "  1  gate blocks taken in the wrong order: i, f, o, g: s" in report.table([outcome])


def test_feedback_keeps_the_checks_message_and_drops_hidden_tests_and_notes_to_the_instructor():
    from rnnlab.grading.command.preprocessors import FOR_INSTRUCTOR, NOTE, HideHiddenTests, ReadableFeedback

    hide = HideHiddenTests()
    answer = nbformat.v4.new_code_cell("def f(): ...", metadata={"nbgrader": {
        "solution": True, "grade_id": "f", "comment": f"No response.\n{FOR_INSTRUCTOR}flagged for review: ..."}})
    hide.preprocess_cell(answer, {}, 0)
    assert answer.metadata.nbgrader.comment == "No response."
    test = nbformat.v4.new_code_cell("check(f)\n### BEGIN HIDDEN TESTS\ncheck(f, hidden=True)\n### END HIDDEN TESTS",
                                     metadata={"nbgrader": {"grade": True, "grade_id": "t", "solution": False}})
    test.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue="f is wrong\nThe mistake: m",
                                           traceback=["\x1b[1mf is wrong\x1b[0m", "The mistake: m"]),
                    nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    hide.preprocess_cell(test, {}, 1)
    assert "hidden=True" not in test.source and test.source.endswith(NOTE)
    assert test.outputs[0].traceback == ["f is wrong", "The mistake: m"]
    _, resources = ReadableFeedback().preprocess(nbformat.v4.new_notebook(cells=[test]), {})
    assert "pre-wrap" in resources["inlining"]["css"][-1] and test.outputs[1].metadata["alt"]


@pytest.mark.slow
def test_feedback_released_through_nbgraders_exchange_reaches_the_student(tmp_path):
    """With an exchange (here a scratch folder), the stock path works with the course's feedback:
    the student submits, the instructor collects, grades, writes feedback with
    ``python -m rnnlab.grading feedback`` and releases it (what the formgrader's Release
    Feedback runs), and the student fetches it: the page with the check's message, no hidden test."""
    assignment, student = "rnn_forward", "ada"
    course, home, exchange = tmp_path / "course", tmp_path / "home", tmp_path / "exchange"
    for folder in (course, home, exchange):
        folder.mkdir()
    exchange.chmod(0o777)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / assignment, course / folder / assignment)
    release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    from exercise_mistakes import rnn_forward as built
    (mistaken,) = [s for s in built.SUBMISSIONS if s.student == "sigmoid_for_tanh"]
    (home / assignment).mkdir()
    nbformat.write(answered(release, source, mistaken), home / assignment / f"{assignment}.ipynb")
    as_student = ["--course=rnnlab", f"--Exchange.root={exchange}", f"--student={student}"]
    nbgrader(course, "generate_assignment", assignment, "--force")
    nbgrader(course, "release_assignment", assignment, "--force")
    nbgrader(home, "submit", assignment, *as_student)
    nbgrader(course, "collect", assignment)
    assert (course / "submitted" / student / assignment / "submission_secret.txt").is_file()
    done = grading_command(course, "autograde", assignment)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    done = grading_command(course, "feedback", assignment)
    assert done.returncode == 0 and "exchange" not in done.stdout, done.stdout + done.stderr[-3000:]
    nbgrader(course, "release_feedback", assignment)
    nbgrader(home, "fetch_feedback", assignment, *as_student)
    (fetched,) = (home / assignment / "feedback").glob("*/*.html")
    page = html.unescape(re.sub(r"<[^>]+>", "", fetched.read_text(encoding="utf-8")))
    assert "The mistake: you used the sigmoid where tanh belongs" in page and "hidden=True" not in page
