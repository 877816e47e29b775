"""Stand-in for the get-pip.py script that ansible-test downloads to put pip into its empty venvs.

That download comes from outside the package registries and is not reachable here. This does the
same job with what Python ships: bootstrap pip from the interpreter's bundled wheel (ensurepip),
then `pip install` the packages ansible-test asks for (e.g. pip==24.2) from the package index.
"""

import subprocess
import sys

# get-pip.py's own options, which pip itself does not know.
OWN_OPTIONS = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip turns off pip's configuration (index, certificates) in its own
# environment, which the install below needs.
subprocess.check_call([sys.executable, "-m", "ensurepip"])
args = [arg for arg in sys.argv[1:] if arg not in OWN_OPTIONS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
