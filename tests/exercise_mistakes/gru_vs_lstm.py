"""Submissions of assignment gru_vs_lstm (each trains six models, so there are few of them)."""

from . import Submission, failing

ASSIGNMENT = "gru_vs_lstm"

SUBMISSIONS = [
    # Two independent mistakes in one notebook: an unseeded model only fails the hidden
    # rerun; the training accuracy used in place of the held-out one fails steps_to_solve.
    Submission("unseeded_and_training_accuracy",
               edits={"train_cell": [("    torch.manual_seed(seed)\n", "")],
                      "steps_to_solve": [("zip(history.eval_step, history.eval_accuracy)",
                                          "zip(history.step, history.accuracy)")]},
               fails={"test_training_runs_hidden": "torch.manual_seed(seed)",
                      "test_steps_to_solve": "you used the training accuracy",
                      "test_steps_to_solve_hidden": "you used the training accuracy"}),
    Submission("read_out_not_counted",
               edits={"hidden_size_for_budget": [("        return layer + hidden * output_size + output_size\n",
                                                  "        return layer\n")]},
               fails={**failing("the read-out is missing from the count", "test_hidden_size_for_budget",
                                "test_hidden_size_for_budget_hidden"),
                      **failing("over the budget", "test_training_runs", "test_training_runs_hidden")}),
]
