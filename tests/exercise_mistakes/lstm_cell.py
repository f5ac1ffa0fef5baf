"""Submissions of assignment lstm_cell: the LSTM's and the forget-gate bias's usual mistakes, and a numpy answer."""

from . import Submission, failing

ASSIGNMENT = "lstm_cell"
ALL = ("test_lstm_cell", "test_lstm_cell_hidden", "test_lstm_forward", "test_lstm_forward_hidden")
BIAS = ("test_set_forget_gate_bias", "test_set_forget_gate_bias_hidden")

SUBMISSIONS = [
    Submission("gate_order_ifog",
               edits={"lstm_cell": [("i, f, g, o = (", "i, f, o, g = (")]},
               fails=failing("you read them as i, f, o, g", *ALL)),
    Submission("sigmoid_on_cell",
               edits={"lstm_cell": [("torch.sigmoid(o) * torch.tanh(c_new)", "torch.sigmoid(o) * torch.sigmoid(c_new)")]},
               fails=failing("you used the sigmoid where tanh belongs: h_t = o_t ⊙ tanh(c_t)", *ALL)),
    # One step keeps |c_t| < 1 on the tests' inputs, where hard tanh is the identity: the cell
    # tests name the missing tanh their outputs show; over five steps c_t passes 1 and the
    # sequence tests see the clip.
    Submission("hard_tanh_on_cell",
               edits={"lstm_cell": [("torch.sigmoid(o) * torch.tanh(c_new)", "torch.sigmoid(o) * torch.clamp(c_new, -1, 1)")]},
               fails={**failing("the tanh on the cell state is missing", *ALL[:2]),
                      **failing("apply hard tanh (a clip to [−1, 1]) there instead of tanh", *ALL[2:])}),
    Submission("dropped_forget_term",
               edits={"lstm_cell": [("torch.sigmoid(f) * c + ", "")]},
               fails=failing("the term f_t ⊙ c_{t-1} is missing", *ALL)),
    Submission("returned_c_h",
               edits={"lstm_cell": [("return h_new, c_new", "return c_new, h_new")]},
               fails=failing("you returned (c_t, h_t)", *ALL)),
    Submission("forget_gate_on_hidden",
               edits={"lstm_cell": [("torch.sigmoid(f) * c", "torch.sigmoid(f) * h")]},
               fails=failing("the forget gate multiplies h_{t-1}", *ALL)),
    Submission("forget_bias_in_both",
               edits={"set_forget_gate_bias": [("parameter[hidden:2 * hidden] = 0.0", "parameter[hidden:2 * hidden] = value")]},
               fails=failing("both b_if and b_hf are set", *BIAS)),
    Submission("forget_bias_wrong_slice",
               edits={"set_forget_gate_bias": [("parameter[hidden:2 * hidden] = value", "parameter[:hidden] = value"),
                                               ("parameter[hidden:2 * hidden] = 0.0", "parameter[:hidden] = 0.0")]},
               fails=failing("the input (i) gate's bias", *BIAS)),
    # Correct in another style: numpy inside, returning numpy arrays; the forget bias split in
    # two halves through .data.
    Submission("style_numpy", sources={
        "lstm_cell": (
            "import numpy as np\n\n"
            "def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):\n"
            "    h, c = (s.numpy() for s in state)\n"
            "    pre = x.numpy() @ weight_ih.numpy().T + bias_ih.numpy() + h @ weight_hh.numpy().T + bias_hh.numpy()\n"
            "    i, f, g, o = np.split(pre, 4, axis=1)\n"
            "    sigmoid = lambda a: 0.5 * (1 + np.tanh(0.5 * a))\n"
            "    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)\n"
            "    return sigmoid(o) * np.tanh(c_new), c_new"),
        "lstm_forward": (
            "def lstm_forward(xs, state0, weight_ih, weight_hh, bias_ih, bias_hh):\n"
            "    hs, cs = [], []\n"
            "    state = state0\n"
            "    for x in xs:\n"
            "        h, c = lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh)\n"
            "        hs.append(h)\n"
            "        cs.append(c)\n"
            "        state = (torch.as_tensor(h), torch.as_tensor(c))\n"
            "    return np.stack(hs), np.stack(cs)"),
        "set_forget_gate_bias": (
            "def set_forget_gate_bias(lstm, value):\n"
            "    H = lstm.hidden_size\n"
            "    for name, parameter in lstm.named_parameters():\n"
            "        if 'bias' in name:\n"
            "            parameter.data[H:2 * H] = value / 2"),
    }),
]
