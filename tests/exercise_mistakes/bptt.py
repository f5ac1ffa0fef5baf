"""Submissions of assignment bptt: the usual mistakes of the backward pass, and a float32 torch answer."""

from . import Submission, failing

ASSIGNMENT = "bptt"
NORMS = ("test_rnn_bptt_norms", "test_rnn_bptt_norms_hidden")
GRADIENTS = ("test_rnn_bptt_gradients", "test_rnn_bptt_gradients_hidden")
RECORD = "        norms[t] = np.linalg.norm(grad_h)\n"
BACK = "        grad_h = grad_a @ weight_hh\n"

SUBMISSIONS = [
    Submission("norms_one_step_early",
               edits={"rnn_bptt": [(RECORD, ""), (BACK, BACK + RECORD)]},
               fails=failing("off by one in time: your norms[k]", *NORMS)),
    Submission("weight_hh_with_new_state",
               edits={"rnn_bptt": [("grad_a.T @ h_before", "grad_a.T @ hs[t]")]},
               fails=failing("off by one in time in weight_hh's gradient", *GRADIENTS)),
    Submission("missing_tanh_derivative",
               edits={"rnn_bptt": [("grad_a = grad_h * (1.0 - hs[t] ** 2)", "grad_a = grad_h")]},
               fails=failing("the tanh derivative is missing", *NORMS, *GRADIENTS)),
    Submission("backward_transposed",
               edits={"rnn_bptt": [(BACK, BACK.replace("weight_hh", "weight_hh.T"))]},
               fails=failing("uses its transpose", *NORMS, *GRADIENTS)),
    Submission("style_torch_float32", sources={"rnn_bptt": (
        "import torch\n\n"
        "def rnn_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, target):\n"
        "    xs, h0, w_ih, w_hh, b_ih, b_hh, target = (torch.tensor(a, dtype=torch.float32) for a in\n"
        "                                              (xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, target))\n"
        "    states = [h0]\n"
        "    for x in xs:\n"
        "        states.append(torch.tanh(x @ w_ih.T + b_ih + states[-1] @ w_hh.T + b_hh))\n"
        "    grad = {'weight_ih': torch.zeros_like(w_ih), 'weight_hh': torch.zeros_like(w_hh),\n"
        "            'bias_ih': torch.zeros_like(b_ih), 'bias_hh': torch.zeros_like(b_hh)}\n"
        "    norms = []\n"
        "    grad_h = states[-1] - target\n"
        "    for t in range(len(xs), 0, -1):  # math time: step t reads xs[t - 1]\n"
        "        norms.insert(0, grad_h.norm().item())\n"
        "        grad_a = grad_h * (1 - states[t] ** 2)\n"
        "        grad['weight_ih'] += grad_a.T @ xs[t - 1]\n"
        "        grad['weight_hh'] += grad_a.T @ states[t - 1]\n"
        "        grad['bias_ih'] += grad_a.sum(0)\n"
        "        grad['bias_hh'] += grad_a.sum(0)\n"
        "        grad_h = grad_a @ w_hh\n"
        "    return grad, torch.tensor(norms)")}),
]
