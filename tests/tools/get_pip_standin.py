"""Offline stand-in for the pip bootstrap script ansible-test downloads.

ansible-test fetches get-pip.py from a host this machine cannot reach; it only
needs pip (and the packages named on the command line) in the new venv, which
ensurepip and the local package index provide.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
