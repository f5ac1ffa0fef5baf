"""Submissions of assignment gru_cell: the GRU's usual mistakes, and correct answers in numpy and float32."""

from . import Submission, failing

ASSIGNMENT = "gru_cell"
ALL = ("test_gru_cell", "test_gru_cell_hidden", "test_gru_forward", "test_gru_forward_hidden")
STEP = "        h = gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)\n"

SUBMISSIONS = [
    Submission("reset_before_matrix",
               edits={"gru_cell": [("    n = torch.tanh(i_n + r * h_n)",
                                    "    H = h.shape[1]\n"
                                    "    n = torch.tanh(i_n + (r * h) @ weight_hh[2 * H:].T + bias_hh[2 * H:])")]},
               fails=failing("Cho et al. (2014)", *ALL)),
    Submission("update_gate_swapped",
               edits={"gru_cell": [("return (1 - z) * n + z * h", "return z * n + (1 - z) * h")]},
               fails=failing("z and 1 − z are swapped", *ALL)),
    Submission("keras_gate_order",
               edits={"gru_cell": [("i_r, i_z, i_n", "i_z, i_r, i_n"), ("h_r, h_z, h_n", "h_z, h_r, h_n")]},
               fails=failing("you read them as z, r, n (Keras's order)", *ALL)),
    Submission("dropped_bias_ih",
               edits={"gru_cell": [("(x @ weight_ih.T + bias_ih)", "(x @ weight_ih.T)")]},
               fails=failing("bias_ih is missing", *ALL)),
    Submission("untransposed",
               edits={"gru_cell": [("(x @ weight_ih.T + bias_ih)", "(x @ weight_ih + bias_ih)")]},
               fails=failing("a weight used untransposed", *ALL)),
    Submission("sigmoid_for_tanh",
               edits={"gru_cell": [("n = torch.tanh(", "n = torch.sigmoid(")]},
               fails=failing("sigmoid where tanh belongs", *ALL)),
    Submission("softsign_candidate",
               edits={"gru_cell": [("n = torch.tanh(i_n + r * h_n)", "n = torch.nn.functional.softsign(i_n + r * h_n)")]},
               fails=failing("apply softsign x / (1 + |x|) there instead of tanh", *ALL)),
    Submission("mixed_gate_order",
               edits={"gru_cell": [("h_r, h_z, h_n", "h_z, h_r, h_n")]},
               fails=failing("weight_hh and bias_hh as z, r, n", *ALL)),
    Submission("recorded_before_step",
               edits={"gru_forward": [(STEP + "        states.append(h)\n", "        states.append(h)\n" + STEP)]},
               fails=failing("off by one in time", "test_gru_forward", "test_gru_forward_hidden")),
    # Correct in another style: numpy inside, in float32, with slices instead of chunk.
    Submission("style_numpy_float32", sources={
        "gru_cell": (
            "import numpy as np\n\n"
            "def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):\n"
            "    x, h, w_ih, w_hh, b_ih, b_hh = (np.asarray(t, dtype=np.float32)\n"
            "                                     for t in (x, h, weight_ih, weight_hh, bias_ih, bias_hh))\n"
            "    H = h.shape[1]\n"
            "    sigmoid = lambda a: 1 / (1 + np.exp(-a))\n"
            "    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh\n"
            "    r = sigmoid(gi[:, :H] + gh[:, :H])\n"
            "    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])\n"
            "    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])\n"
            "    return (1 - z) * n + z * h"),
        "gru_forward": (
            "def gru_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):\n"
            "    states, h = [], h0\n"
            "    for t in range(xs.shape[0]):\n"
            "        h = gru_cell(xs[t], h, weight_ih, weight_hh, bias_ih, bias_hh)\n"
            "        states.append(h)\n"
            "    return np.stack(states)"),
    }),
]
