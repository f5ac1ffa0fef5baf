"""How kernels talk to Jupyter, for the rnnlab exercises.

install.py copies this file into the environment's Jupyter configuration twice: as
``jupyter_server_config.py`` (the kernels of JupyterLab and Notebook 7) and as
``nbgrader_config.py`` (the kernel nbgrader's Validate button starts). On Linux, kernels
then talk over Unix sockets in Jupyter's runtime folder instead of TCP, so that
ipykernel does not warn on every start that the connection is not encrypted. A socket's
path must fit in 108 bytes: with a longer runtime folder path, TCP stays.
"""

import os
import sys

from jupyter_core.paths import jupyter_runtime_dir

c = get_config()  # noqa: F821 (provided by traitlets when Jupyter loads this file)

if sys.platform.startswith("linux") and len(jupyter_runtime_dir()) < 80:
    os.makedirs(jupyter_runtime_dir(), mode=0o700, exist_ok=True)
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = os.path.join(jupyter_runtime_dir(), "kernel")
