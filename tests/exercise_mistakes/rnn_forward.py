"""Submissions of assignment rnn_forward: the usual mistakes, and correct answers in other styles."""

from . import Submission, failing

ASSIGNMENT = "rnn_forward"
CELL_TESTS = ("test_rnn_cell", "test_rnn_cell_hidden", "test_rnn_forward", "test_rnn_forward_hidden")
STEP = "        h = rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)\n"
TANH = "np.tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)"

SUBMISSIONS = [
    Submission("sigmoid_for_tanh",
               edits={"rnn_cell": [(TANH, "1 / (1 + np.exp(-(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)))")]},
               fails=failing("sigmoid where tanh belongs", *CELL_TESTS)),
    # Named by kind: the function applied is recovered from the outputs, not looked up in a list.
    Submission("relu_for_tanh",
               edits={"rnn_cell": [(TANH, "np.maximum(0.0, x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)")]},
               fails=failing("apply ReLU there instead of tanh", *CELL_TESTS)),
    Submission("dropped_recurrent_term",
               edits={"rnn_cell": [(TANH, "np.tanh(x @ weight_ih.T + bias_ih + bias_hh)")]},
               fails=failing("the term W_hh h_{t-1} is missing", *CELL_TESTS)),
    Submission("dropped_bias_hh",
               edits={"rnn_cell": [("+ h @ weight_hh.T + bias_hh)", "+ h @ weight_hh.T)")]},
               fails=failing("bias_hh is missing", *CELL_TESTS)),
    Submission("untransposed",
               edits={"rnn_cell": [(TANH, "np.tanh(x @ weight_ih + bias_ih + h @ weight_hh + bias_hh)")]},
               fails=failing("used untransposed", *CELL_TESTS)),
    Submission("recorded_before_step",
               edits={"rnn_forward": [(STEP + "        states.append(h)\n", "        states.append(h)\n" + STEP)]},
               fails=failing("off by one in time", "test_rnn_forward", "test_rnn_forward_hidden")),
    Submission("reused_buffer",
               edits={"rnn_forward": [("    h = h0\n", "    h = h0.copy()\n"), (STEP, STEP.replace("h = ", "h[:] = "))]},
               fails=failing("every row holds the last state", "test_rnn_forward", "test_rnn_forward_hidden")),
    # The visible sizes have I = H for the second layer count, so only the hidden test sees it.
    Submission("every_layer_reads_input",
               sources={"rnn_parameter_count": (
                   "def rnn_parameter_count(input_size, hidden_size, num_layers):\n"
                   "    return num_layers * (hidden_size * (input_size + hidden_size) + 2 * hidden_size)")},
               fails=failing("every layer is counted with the input size I", "test_rnn_parameter_count_hidden")),
    Submission("one_bias",
               sources={"rnn_parameter_count": (
                   "def rnn_parameter_count(input_size, hidden_size, num_layers):\n"
                   "    total = hidden_size * (input_size + hidden_size) + hidden_size\n"
                   "    return total + (num_layers - 1) * (2 * hidden_size * hidden_size + hidden_size)")},
               fails=failing("one bias vector per layer", "test_rnn_parameter_count", "test_rnn_parameter_count_hidden")),
    # Correct in other styles, all in one notebook: torch inside in float32, printing a
    # warning, stderr output and an overflow RuntimeWarning (harmless here); a vectorised
    # input projection into a preallocated float32 array; a count summed over shapes.
    Submission("other_styles", sources={
        "rnn_cell": (
            "import sys\n"
            "import warnings\n\n"
            "def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):\n"
            "    warnings.warn('rnn_cell: this implementation is slow', UserWarning)\n"
            "    print('debug: rnn_cell called', file=sys.stderr)\n"
            "    np.exp(np.float64(1000.0))\n"
            "    x, h, w_ih, w_hh, b_ih, b_hh = (torch.as_tensor(a, dtype=torch.float32)\n"
            "                                     for a in (x, h, weight_ih, weight_hh, bias_ih, bias_hh))\n"
            "    return torch.tanh(torch.addmm(b_ih + b_hh, x, w_ih.T) + h @ w_hh.T).numpy()"),
        "rnn_forward": (
            "def rnn_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):\n"
            "    projected = xs @ weight_ih.T + bias_ih + bias_hh  # every step at once\n"
            "    states = np.empty(projected.shape, dtype=np.float32)\n"
            "    h = h0\n"
            "    for t in range(len(xs)):\n"
            "        h = np.tanh(projected[t] + h @ weight_hh.T)\n"
            "        states[t] = h\n"
            "    return states"),
        "rnn_parameter_count": (
            "def rnn_parameter_count(input_size, hidden_size, num_layers):\n"
            "    total = 0\n"
            "    for layer in range(num_layers):\n"
            "        inputs = input_size if layer == 0 else hidden_size\n"
            "        shapes = [(hidden_size, inputs), (hidden_size, hidden_size), (hidden_size,), (hidden_size,)]\n"
            "        total += sum(int(np.prod(shape)) for shape in shapes)\n"
            "    return total"),
    }),
]
